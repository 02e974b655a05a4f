package epoll

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSetWaitsInPoller: events go through, and while nothing happens the loop waits in
// the runtime's network poller ("IO wait"), not in a blocking epoll_wait ("syscall"), which
// would keep the process's only processor until the runtime's monitor took it back.
func TestSetWaitsInPoller(t *testing.T) {
	set, err := New()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		set.Loop(func(d uint64) { got <- d })
	}()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	for i := range 3 {
		if err := set.Add(p[0], unix.EPOLLIN|unix.EPOLLONESHOT, uint64(7+i)); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			// Idle before this event: the loop waits in the poller, not in a system call.
			waitState(t, "epoll.(*Set).Loop", "IO wait")
		}
		unix.Write(p[1], []byte{1})
		select {
		case d := <-got:
			if d != uint64(7+i) {
				t.Fatalf("event data %d, want %d", d, 7+i)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("event not delivered")
		}
		set.Remove(p[0])
		var b [8]byte
		unix.Read(p[0], b[:])
	}
	set.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not end")
	}
}

// waitState waits until the goroutine whose stack has fn is in state (as runtime.Stack names
// it), failing the test with its stack after 2 s.
func waitState(t *testing.T, fn, state string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		last := ""
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, fn) {
				last = g
				if strings.Contains(strings.SplitN(g, "\n", 2)[0], "["+state) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine in %s is in state %q:\n%s", fn, state, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSetClosesWhenDone: a set whose loop has ended has closed its epoll fd and eventfd
// (a service makes sets for every attached program), and later calls neither fail loudly nor
// touch those numbers.
func TestSetClosesWhenDone(t *testing.T) {
	set, err := New()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		set.Loop(func(uint64) {})
	}()
	set.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not end")
	}
	for _, fd := range []int{set.epfd, set.wake} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("fd %d still open after the loop ended", fd)
		}
	}
	if err := set.Add(0, unix.EPOLLIN, 1); err != unix.EBADF {
		t.Errorf("add after the end: %v, want EBADF", err)
	}
	set.Remove(0)
	set.Close()
}
