package supervisor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestStatsRecord(t *testing.T) {
	sup := &Supervisor{}
	st := &sup.stats
	start := time.Now().Add(-3 * time.Millisecond) // lands in the 5 ms bucket
	for _, c := range []struct {
		nr  int32
		err error
	}{
		{unix.SYS_CONNECT, nil},
		{unix.SYS_CONNECT, unix.ECONNREFUSED},
		{unix.SYS_BIND, errors.Join(unix.EADDRINUSE)},
		{unix.SYS_GETSOCKOPT, errContinue},
		{unix.SYS_ACCEPT4, errAnswered},
		{unix.SYS_SHUTDOWN, errors.New("not an errno")},
		{100000, nil}, // out of the table: timed, not named
	} {
		st.record(c.nr, c.err, start)
	}
	s := sup.Stats()
	if s.Calls["connect"] != 2 || s.Calls["bind"] != 1 || s.Calls["getsockopt"] != 1 || s.Calls["accept4"] != 1 || s.Calls["shutdown"] != 1 {
		t.Errorf("calls %v", s.Calls)
	}
	if s.Continued != 1 {
		t.Errorf("continued %d", s.Continued)
	}
	if s.Failed["ECONNREFUSED"] != 1 || s.Failed["EADDRINUSE"] != 1 || s.Failed["EIO"] != 1 || len(s.Failed) != 3 {
		t.Errorf("failed %v", s.Failed)
	}
	buckets := LatencyBuckets()
	if len(s.Latency) != len(buckets)+1 {
		t.Fatalf("%d latency counts for %d buckets", len(s.Latency), len(buckets))
	}
	for i, n := range s.Latency {
		want := uint64(0)
		if i < len(buckets) && buckets[i] == 5*time.Millisecond {
			want = 7
		}
		if n != want {
			t.Errorf("bucket %d: %d, want %d (%v)", i, n, want, s.Latency)
		}
	}
	if s.LatencySum < 7*3*time.Millisecond {
		t.Errorf("latency sum %v", s.LatencySum)
	}
}

// A real program's calls are counted, and its two connections (one connected, one accepted)
// are counted and end.
func TestStatsOfAProgram(t *testing.T) {
	out, s := supervise(t, "identity")
	if !strings.Contains(out, "OK") {
		t.Fatalf("child: %s", out)
	}
	deadline := time.Now().Add(2 * lingerCheck)
	for s.Stats().ActiveConnections != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := s.Stats()
	for name, want := range map[string]uint64{"socket": 2, "bind": 1, "listen": 1, "connect": 1, "accept4": 1} {
		if st.Calls[name] < want {
			t.Errorf("%s: %d calls, want at least %d (%v)", name, st.Calls[name], want, st.Calls)
		}
	}
	if st.Connections != 2 || st.ActiveConnections != 0 {
		t.Errorf("connections %d, active %d; want 2, 0", st.Connections, st.ActiveConnections)
	}
	var total, timed uint64
	for _, n := range st.Calls {
		total += n
	}
	for _, n := range st.Latency {
		timed += n
	}
	if timed != total || total == 0 {
		t.Errorf("%d calls timed, %d counted", timed, total)
	}
}

// BenchmarkStatsRecord is the cost the counters add to each trapped call (on top of the
// handling itself): a clock read for the start, one for the end, and three atomic adds. Only
// the receiving goroutine records, so there is no contention to measure.
func BenchmarkStatsRecord(b *testing.B) {
	var sup Supervisor
	for b.Loop() {
		sup.stats.record(unix.SYS_CONNECT, nil, time.Now())
	}
}
