package notify

import (
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkRoundTrip measures a trapped call answered at once: the floor every emulated call
// pays (the switch to the supervisor and back, receive and answer). The child makes b.N calls;
// ns/call excludes its start-up.
func BenchmarkRoundTrip(b *testing.B) {
	benchChild(b, "loop", func(l *Listener, n *Notification) { l.Return(n.ID, 0) })
}

// BenchmarkSyscall measures a system call that is not trapped (getppid): the price of entering
// the kernel at all, the unit that a round trip and every call on the data path are made of.
// It is what differs most between machines (docs/benchmarks.md).
func BenchmarkSyscall(b *testing.B) {
	for b.Loop() {
		unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	}
}

// BenchmarkAddFD measures a trapped socket() answered with an fd (AddFDReturn), which the child
// then closes: the floor of every call that hands the program a socket (socket, accept).
func BenchmarkAddFD(b *testing.B) { benchAddFD(b, "socketloop") }

// benchAddFD runs child behaviour what, answering each socket() with an fd.
func benchAddFD(b *testing.B, what string) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	benchChild(b, what, func(l *Listener, n *Notification) {
		if _, err := l.AddFDReturn(n.ID, fds[0], true); err != nil {
			b.Error(err)
		}
	})
}

// benchChild runs child behaviour what for b.N calls answered by handle and reports the
// ns/call it prints. Both sides run as in production: the supervisor with half the CPUs, as
// ztnc-run sets it (limitProcs), and the child on one thread, like nginx or wrk. A Go child
// with two processors wakes an idle thread of its own around every call: on 2 CPUs its idle
// round trip costs ~60 µs instead of ~6.
//
// The busy loops also report the CPU each call costs: the program's (prog-cpu-ns/call, its
// loop alone) and the supervisor's (sup-cpu-ns/call, this process while the child ran, start
// and exit included: they are negligible at the N the benchmark settles on). Where the CPUs
// are all busy, as with many connections in flight, their sum is what a call takes from
// the work, whatever the wall time.
func benchChild(b *testing.B, what string, handle func(l *Listener, n *Notification)) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(1, runtime.NumCPU()/2)))
	b.Setenv("GOMAXPROCS", "1") // the child's
	b.Setenv("ZTNC_NOTIFY_LOOPS", strconv.Itoa(b.N))
	sup := cpuTime()
	r := runChild(b, what, handle)
	sup = cpuTime() - sup
	f := strings.Fields(r.out)
	switch {
	case len(f) == 2 && f[1] == "ns/call":
	case len(f) == 4 && f[1] == "ns/call" && f[3] == "cpu-ns/call":
		prog, _ := strconv.ParseFloat(f[2], 64)
		b.ReportMetric(prog, "prog-cpu-ns/call")
		b.ReportMetric(float64(sup.Nanoseconds())/float64(b.N), "sup-cpu-ns/call")
	default:
		b.Fatalf("child output %q", r.out)
	}
	ns, _ := strconv.ParseFloat(f[0], 64)
	b.ReportMetric(ns, "ns/call")
}

// BenchmarkIdleRoundTrip is BenchmarkRoundTrip with the CPUs given time to go idle before each
// call (200 µs), as between the calls of one connection at a time: the receiver is parked in
// the poller and the threads are woken from idle. Median ns/call.
func BenchmarkIdleRoundTrip(b *testing.B) {
	benchChild(b, "idleloop", func(l *Listener, n *Notification) { l.Return(n.ID, 0) })
}

// BenchmarkIdleAddFD is BenchmarkAddFD after idle (see BenchmarkIdleRoundTrip): ADDFD wakes the
// trapped thread without SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP's hand-over and waits for it.
func BenchmarkIdleAddFD(b *testing.B) { benchAddFD(b, "idlesocketloop") }
