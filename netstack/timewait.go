package netstack

import (
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// A budget for TIME_WAIT.
//
// gVisor keeps a whole endpoint in TIME_WAIT (~7 KB of heap with its sender, SACK scoreboard,
// timers and demuxer entries; heap profile of the server member in bench/matrix's new
// connection -c32 row) where Linux keeps a small minisocket and caps their number
// (net.ipv4.tcp_max_tw_buckets). A program that closes a connection per request leaves rate ×
// timeWait of them behind: at 7,000 connections/s, ~100,000 endpoints and ~700 MB of heap —
// enough for any client that opens and closes connections fast to get a memory-limited
// container's ztnc-run killed. So when connections end faster than twBudget per timeWait, the
// stack shortens TIME_WAIT for the endpoints that enter it from then on, to keep about
// twBudget of them waiting, but never below twMin: long enough to answer a FIN retransmitted
// after a lost final ACK, and old duplicates of a connection are already unlikely on an
// overlay with random initial sequence numbers and timestamps.
const (
	twBudget = 8192 // endpoints, ~56 MB
	twMin    = time.Second
	twWindow = time.Second // the close rate is measured over at least this long
)

// timeWaitFor is the TIME_WAIT duration for connections ending at rate per second: whole
// seconds in [twMin, timeWait].
func timeWaitFor(rate float64) time.Duration {
	if rate <= 0 {
		return timeWait
	}
	d := time.Duration(twBudget/rate) * time.Second
	return min(max(d.Truncate(time.Second), twMin), timeWait)
}

// timeWaitGovernor adjusts a stack's TIME_WAIT duration to the rate at which its connections
// end (ended is called for each).
type timeWaitGovernor struct {
	st *stack.Stack

	mu      sync.Mutex
	start   time.Time // of the current measurement window
	ends    int       // connections ended in the window
	current time.Duration
}

func newTimeWaitGovernor(st *stack.Stack) *timeWaitGovernor {
	return &timeWaitGovernor{st: st, start: time.Now(), current: timeWait}
}

// ended counts a connection that ended at now, and sets the duration anew when the window
// is over.
func (g *timeWaitGovernor) ended(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ends++
	elapsed := now.Sub(g.start)
	if elapsed < twWindow {
		return
	}
	d := timeWaitFor(float64(g.ends) / elapsed.Seconds())
	g.start, g.ends = now, 0
	if d == g.current {
		return
	}
	opt := tcpip.TCPTimeWaitTimeoutOption(d)
	if g.st.SetTransportProtocolOption(tcp.ProtocolNumber, &opt) == nil {
		g.current = d
	}
}
