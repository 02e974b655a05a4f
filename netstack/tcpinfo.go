package netstack

import (
	"math"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

const (
	// tcpInfiniteSsthresh is what Linux shows before the first loss.
	tcpInfiniteSsthresh = 0x7fffffff
	// tcpReordering is Linux's initial reordering metric (sysctl tcp_reordering).
	tcpReordering = 3
	// tcpTimestampOptionLen is the space the timestamp option takes in every segment
	// (gVisor offers it in every SYN, as Linux does, and peers accept it).
	tcpTimestampOptionLen = 12
	loopbackMTU           = 65536
)

// Linux congestion-avoidance states (enum tcp_ca_state).
const (
	tcpCAOpen     = 0
	tcpCADisorder = 1
	tcpCARecovery = 3
	tcpCALoss     = 4
)

// tcpInfoSize is the size of the kernel's struct tcp_info as x/sys/unix knows it (280 bytes
// on Linux 6.18): programs ask for at most what their headers know and get that much.
const tcpInfoSize = int(unsafe.Sizeof(unix.TCPInfo{}))

// tcpInfo returns the endpoint's TCP_INFO laid out as Linux's struct tcp_info. gVisor knows
// the state, congestion state, RTO, RTT, window and segment counts; the MSS is derived from
// the path MTU. Counters gVisor does not keep stay zero.
func (e *TCPEndpoint) tcpInfo() ([]byte, error) {
	var o tcpip.TCPInfoOption
	if err := e.ep.GetSockOpt(&o); err != nil {
		return nil, errno(err)
	}
	usec := func(d time.Duration) uint32 { return uint32(min(d/time.Microsecond, math.MaxUint32)) }
	info := unix.TCPInfo{
		State:        linuxTCPState(tcp.EndpointState(e.ep.State())),
		Ca_state:     tcpCAOpen,
		Rto:          usec(o.RTO),
		Rtt:          usec(o.RTT),
		Rttvar:       usec(o.RTTVar),
		Snd_ssthresh: min(o.SndSsthresh, tcpInfiniteSsthresh),
		Snd_cwnd:     o.SndCwnd,
		Reordering:   tcpReordering,
	}
	switch o.CcState {
	case tcpip.RTORecovery:
		info.Ca_state = tcpCALoss
	case tcpip.FastRecovery, tcpip.SACKRecovery:
		info.Ca_state = tcpCARecovery
	case tcpip.Disorder:
		info.Ca_state = tcpCADisorder
	}
	if mtu, mss := e.pathMSS(); mss > 0 {
		info.Pmtu = mtu
		info.Snd_mss, info.Rcv_mss, info.Advmss = mss, mss, mss
	}
	if st, ok := e.ep.Stats().(*tcp.Stats); ok {
		info.Segs_out = uint32(st.SegmentsSent.Value())
		info.Segs_in = uint32(st.SegmentsReceived.Value())
	}
	if o.ReorderSeen {
		info.Reord_seen = 1
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&info)), tcpInfoSize)...), nil
}

// pathMSS returns the MTU of the connection's interface and the segment payload size that
// fits it (0 when not connected).
func (e *TCPEndpoint) pathMSS() (mtu, mss uint32) {
	switch tcp.EndpointState(e.ep.State()) {
	case tcp.StateEstablished, tcp.StateFinWait1, tcp.StateFinWait2, tcp.StateTimeWait,
		tcp.StateCloseWait, tcp.StateLastAck, tcp.StateClosing:
	default:
		return 0, 0
	}
	local, err := e.ep.GetLocalAddress()
	if err != nil {
		return 0, 0
	}
	a := netipAddr(local.Addr, false).Unmap()
	mtu = e.s.link.MTU()
	if a.IsLoopback() {
		mtu = loopbackMTU
	}
	ipHdr := uint32(header.IPv4MinimumSize)
	if a.Is6() {
		ipHdr = header.IPv6MinimumSize
	}
	return mtu, mtu - ipHdr - header.TCPMinimumSize - tcpTimestampOptionLen
}
