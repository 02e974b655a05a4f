package supervisor

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// epollSet is an epoll set that one goroutine waits on (loop), with an eventfd in it that ends
// the loop (close). The hang-up watch and the readiness waits are each one.
//
// The loop waits in the runtime's network poller (the set's own fd is in it), not in a
// blocking epoll_wait: a goroutine blocked in a system call keeps ztnc-run's only processor
// until the runtime's monitor takes it back, which after an idle spell is up to ~20 ms. Every
// wait woken through the set (a blocking recvfrom with an address, like ping's) stalled the
// whole process that long every so often.
//
// When the loop ends it closes the set and its eventfd: a service runs a supervisor per
// attached program, and each left two sets behind. add, remove and close hold mu for reading
// and find the set closed afterwards, so none touches a number the process has reused.
type epollSet struct {
	mu     sync.RWMutex
	closed bool
	epfd   int
	wake   int             // eventfd: stops the loop
	f      *os.File        // epfd, in the poller
	rc     syscall.RawConn // of f
}

func newEpollSet() (*epollSet, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventData(&ev, wakeData)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	// Non-blocking, so that os.NewFile puts it in the poller (it is readable while events
	// are ready).
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "ztnc-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		unix.Close(wake)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return &epollSet{epfd: epfd, wake: wake, f: f, rc: rc}, nil
}

// add puts fd in the set for events, tagged with data (never wakeData). EBADF once closed.
func (e *epollSet) add(fd int, events uint32, data uint64) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return unix.EBADF
	}
	ev := unix.EpollEvent{Events: events}
	setEventData(&ev, data)
	return rawEpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// remove takes fd out of the set.
func (e *epollSet) remove(fd int) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.closed {
		rawEpollCtl(e.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
}

// loop calls event with the data of each event until close, then closes the set; an epoll
// failure fails the supervisor.
func (e *epollSet) loop(s *Supervisor, event func(data uint64)) {
	defer e.release()
	evs := make([]unix.EpollEvent, 64)
	var n int
	var werr unix.Errno
	// Without waiting: when nothing is ready the poller waits for the set to become readable.
	// Its readiness is edge-triggered and cleared only on entering Read, so events that come
	// after this look raise a new edge.
	take := func(fd uintptr) bool {
		for {
			r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, fd, uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
			n, werr = int(r), e
			if e != unix.EINTR {
				return e != 0 || n > 0
			}
		}
	}
	for {
		err := e.rc.Read(take)
		if err == nil && werr != 0 {
			err = werr
		}
		if err != nil {
			s.fail(fmt.Errorf("epoll_wait: %w", err))
			return
		}
		for _, ev := range evs[:n] {
			data := eventData(&ev)
			if data == wakeData {
				return
			}
			event(data)
		}
	}
}

// close ends the loop, which closes the set.
func (e *epollSet) close() {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.closed {
		var one = [8]byte{1}
		unix.Write(e.wake, one[:])
	}
}

func (e *epollSet) release() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.f.Close()
	unix.Close(e.wake)
}

// wakeData tags the eventfd in the set (no inode, no waiter key is all ones).
const wakeData = ^uint64(0)

// The 64-bit epoll_data of an event is split by x/sys into Fd and Pad.
func setEventData(ev *unix.EpollEvent, v uint64) { *(*uint64)(unsafe.Pointer(&ev.Fd)) = v }

func eventData(ev *unix.EpollEvent) uint64 { return *(*uint64)(unsafe.Pointer(&ev.Fd)) }
