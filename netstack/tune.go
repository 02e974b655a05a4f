package netstack

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Settings of every stack, each with the reason it differs from gVisor's default (or why the
// default is restated).
const (
	// defaultCongestionControl: BenchmarkSpliceThroughput/{reno,cubic}, alternated five times
	// on the hub, gave medians of 1.78 and 1.74 Gbit/s (2 loaded cores, spread 0.7-3.5):
	// no difference on a lossless link. Reno is what gVisor and Tailscale ship and had no
	// overflow bugs (gvisor#11632 hit cubic); cubic's faster window regrowth would matter
	// only on long-RTT lossy paths.
	defaultCongestionControl = "reno"

	// Receive buffers 4 KiB / 1 MiB / 8 MiB and send buffers 4 KiB / 1 MiB / 6 MiB: overlay
	// paths cross the internet, so the bandwidth-delay product is large (100 ms at 500 Mbit/s
	// is 6 MB); gVisor's 4 MiB ceiling capped Tailscale's throughput at 151 Mbit/s at 100 ms
	// (tailscale d9d9d525d: 249 Mbit/s with these). Buffers are limits, not allocations: an
	// idle connection costs ~5.5 KiB, and the receive buffer grows only as the proxy reads
	// (moderate-rcvbuf, driven by Splice's ModerateRecvBuf calls).
	rcvBufMin, rcvBufDefault, rcvBufMax = 4 << 10, 1 << 20, 8 << 20
	sndBufMin, sndBufDefault, sndBufMax = 4 << 10, 1 << 20, 6 << 20

	// timeWait is 15 s instead of 60 s: every active close holds an ephemeral port that
	// long, and programs that open a connection per request (curl loops, HTTP/1.0 clients,
	// the connection benchmarks) exhaust Linux's usual range of ~28,000 ports (see
	// localPortRange) at ~470 connections/s with 60 s. Two maximum segment lifetimes of 7.5 s are still far beyond any overlay RTT.
	// Above ~550 connections ending per second, timewait.go shortens it to bound memory.
	timeWait = 15 * time.Second
)

func tune(st *stack.Stack, cfg Config) error {
	set := func(what string, opt tcpip.SettableTransportProtocolOption) error {
		if err := st.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return fmt.Errorf("netstack: set TCP %s: %s", what, err)
		}
		return nil
	}
	cc := tcpip.CongestionControlOption(cfg.CongestionControl)
	if cc == "" {
		cc = defaultCongestionControl
	}
	// SACK is gVisor's default already; restated so that a change of default upstream does
	// not silently cost an order of magnitude of throughput under loss.
	sack := tcpip.TCPSACKEnabled(true)
	// RACK off: gVisor's RACK loss detection retransmits spuriously and shrinks the window
	// (gvisor#9707; Tailscale 83808029d). Measured here (BenchmarkSpliceThroughput/reno+rack):
	// 23-46 retransmissions per run with RACK and not one frame lost, none without it. Loss
	// is still recovered by SACK and dup-ack fast retransmit.
	recovery := tcpip.TCPRecovery(0)
	// Nagle off, whatever the program asks (TCPEndpoint.noDelay keeps its TCP_NODELAY for
	// getsockopt). The program's small writes are coalesced before they reach the stack: they
	// queue in the socketpair while the splice is busy, and segments queued behind the
	// congestion window merge. gVisor's Nagle is the classic one (a short segment waits while
	// anything is unacknowledged, not only a short one as in Linux's Minshall variant), so
	// with a peer that delays ACKs a response cut in two (headers, then a sendfile body) or
	// between one and two segments long waited for the peer's delayed ACK: measured on the
	// nginx new-connection row (bench/matrix), Nagle off serves 1.29× the connections at -c1.
	delay := tcpip.TCPDelayEnabled(false)
	// Moderate receive buffer (auto-tuning) on: windows grow to the BDP only for connections
	// that need it.
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: rcvBufMin, Default: rcvBufDefault, Max: rcvBufMax}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: sndBufMin, Default: sndBufDefault, Max: sndBufMax}
	tw := tcpip.TCPTimeWaitTimeoutOption(timeWait)
	for _, o := range []struct {
		what string
		opt  tcpip.SettableTransportProtocolOption
	}{
		{"congestion control " + string(cc), &cc},
		{"SACK", &sack},
		{"recovery", &recovery},
		{"delay", &delay},
		{"moderate receive buffer", &moderate},
		{"receive buffer", &rcv},
		{"send buffer", &snd},
		{"TIME_WAIT", &tw},
	} {
		if err := set(o.what, o.opt); err != nil {
			return err
		}
	}
	if lo, hi, ok := localPortRange(); ok {
		if err := st.SetPortRange(lo, hi); err != nil {
			return fmt.Errorf("netstack: set ephemeral ports %d-%d: %s", lo, hi, err)
		}
	}
	return nil
}

// localPortRangeFile is where Linux keeps its ephemeral port range.
const localPortRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// localPortRange is the host's ephemeral port range, which the stack uses instead of gVisor's
// own (16000-65535): programs expect the ports below it to stay free for servers (MongoDB's
// 27017, say), and an outgoing connection must not take one. ok is false when the file cannot
// be read or makes no sense; gVisor's range stays then.
func localPortRange() (lo, hi uint16, ok bool) {
	b, err := os.ReadFile(localPortRangeFile)
	if err != nil {
		return 0, 0, false
	}
	return parsePortRange(string(b))
}

// parsePortRange reads ip_local_port_range's "first last" (at least two ports).
func parsePortRange(s string) (lo, hi uint16, ok bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(f[0], 10, 16)
	b, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || a == 0 || a >= b {
		return 0, 0, false
	}
	return uint16(a), uint16(b), true
}
