package supervisor

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// LatencyBuckets returns the upper bounds of the handling-latency histogram of Stats.
func LatencyBuckets() []time.Duration {
	out := make([]time.Duration, len(latencyBounds))
	for i, b := range latencyBounds {
		out[i] = time.Duration(b)
	}
	return out
}

// maxSyscall bounds the system call numbers counted one by one (x86-64 numbers are < 512).
const maxSyscall = 512

// stats are the supervisor's counters. Every update is an atomic add: the receive loop takes no
// lock for them.
type stats struct {
	calls     [maxSyscall]atomic.Uint64 // trapped calls by number
	continued atomic.Uint64             // calls on fds that are not ours, run by the kernel
	failed    [256]atomic.Uint64        // calls answered with an errno, by errno

	connections atomic.Uint64 // connections handed to the stack's proxy
	active      atomic.Int64  // of those, not ended yet
	spliceFails atomic.Uint64 // established connections the proxy refused

	latency    [len(latencyBounds) + 1]atomic.Uint64 // the last bucket is +Inf
	latencySum atomic.Uint64                         // nanoseconds
}

// latencyBounds are the histogram's bucket bounds in nanoseconds: 1 µs to 100 ms, 1-2-5.
var latencyBounds = [...]int64{1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8}

// record counts one trapped call, its outcome, and how long its synchronous handling took
// (from receiving the notification to answering it, or to handing it to a goroutine).
func (st *stats) record(nr int32, err error, start time.Time) {
	d := int64(time.Since(start))
	if uint32(nr) < maxSyscall {
		st.calls[nr].Add(1)
	}
	switch {
	case err == nil, err == errAnswered:
	case err == errContinue:
		st.continued.Add(1)
	default:
		var errno unix.Errno
		if errors.As(err, &errno) && errno < 256 {
			st.failed[errno].Add(1)
		} else {
			st.failed[unix.EIO].Add(1)
		}
	}
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	st.latency[i].Add(1)
	st.latencySum.Add(uint64(d))
}

// Stats is a snapshot of a supervisor's counters.
type Stats struct {
	// Calls counts trapped system calls by name (socket, connect, ...).
	Calls map[string]uint64
	// Continued counts trapped calls on fds that are not emulated sockets, which the kernel ran.
	Continued uint64
	// Failed counts calls answered with an error, by errno name (ECONNREFUSED, ...).
	Failed map[string]uint64
	// Sockets is the number of emulated sockets alive.
	Sockets int
	// Connections counts TCP connections established (connected or accepted) since the start;
	// ActiveConnections those not ended yet.
	Connections       uint64
	ActiveConnections int64
	// SpliceFailures counts established connections that could not be handed to the stack's
	// proxy (reset instead).
	SpliceFailures uint64
	// Latency counts calls by handling time: Latency[i] calls took at most LatencyBuckets()[i]
	// (and more than the bucket before); the last element counts the slower ones. LatencySum
	// is the total. Handling time runs from receiving the notification to answering it, or to
	// handing a blocking call to the goroutine that waits for it.
	Latency    []uint64
	LatencySum time.Duration
}

// Stats returns a snapshot of the supervisor's counters.
func (s *Supervisor) Stats() Stats {
	st := &s.stats
	out := Stats{
		Calls:             map[string]uint64{},
		Continued:         st.continued.Load(),
		Failed:            map[string]uint64{},
		Sockets:           s.Sockets(),
		Connections:       st.connections.Load(),
		ActiveConnections: st.active.Load(),
		SpliceFailures:    st.spliceFails.Load(),
		Latency:           make([]uint64, len(st.latency)),
		LatencySum:        time.Duration(st.latencySum.Load()),
	}
	for nr := range st.calls {
		if v := st.calls[nr].Load(); v != 0 {
			out.Calls[callName(int32(nr))] += v
		}
	}
	for e := range st.failed {
		if v := st.failed[e].Load(); v != 0 {
			out.Failed[errnoName(unix.Errno(e))] += v
		}
	}
	for i := range st.latency {
		out.Latency[i] = st.latency[i].Load()
	}
	return out
}

// errnoName is the symbolic name of an errno ("ECONNREFUSED"), or "errno N".
func errnoName(e unix.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}
