// Package epoll is an epoll set that one goroutine waits on from inside the runtime's network
// poller. The supervisor watches sockets with such sets (hang-ups, readiness), and netstack
// wakes the connections it has parked.
package epoll

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Set is an epoll set that one goroutine waits on (Loop), with an eventfd in it that ends the
// loop (Close).
//
// The loop waits in the runtime's network poller (the set's own fd is in it), not in a
// blocking epoll_wait: a goroutine blocked in a system call keeps ztnc-run's only processor
// until the runtime's monitor takes it back, which after an idle spell is up to ~20 ms. Every
// wait woken through the set (a blocking recvfrom with an address, like ping's) stalled the
// whole process that long every so often.
//
// When the loop ends it closes the set and its eventfd: a service runs a supervisor per
// attached program, and each left two sets behind. Add, Modify, Remove and Close hold mu for
// reading and find the set closed afterwards, so none touches a number the process has
// reused.
type Set struct {
	mu     sync.RWMutex
	closed bool
	epfd   int
	wake   int             // eventfd: stops the loop
	f      *os.File        // epfd, in the poller
	rc     syscall.RawConn // of f
}

// New makes a set; Loop must run for it to deliver events and, in the end, to release it.
func New() (*Set, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := Event(unix.EPOLLIN, wakeData)
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
	return &Set{epfd: epfd, wake: wake, f: f, rc: rc}, nil
}

// Add puts fd in the set for events, tagged with data (never all ones). EBADF once closed.
func (e *Set) Add(fd int, events uint32, data uint64) error {
	return e.ctl(unix.EPOLL_CTL_ADD, fd, events, data)
}

// Modify changes what fd is watched for (re-arms an EPOLLONESHOT registration).
func (e *Set) Modify(fd int, events uint32, data uint64) error {
	return e.ctl(unix.EPOLL_CTL_MOD, fd, events, data)
}

// Remove takes fd out of the set.
func (e *Set) Remove(fd int) {
	e.ctl(unix.EPOLL_CTL_DEL, fd, 0, 0)
}

func (e *Set) ctl(op, fd int, events uint32, data uint64) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return unix.EBADF
	}
	ev := Event(events, data)
	// Raw: the runtime's system call bookkeeping would wake its monitor after an idle spell.
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(e.epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Loop calls event with the data of each event until Close, then closes the set and returns
// nil; it returns epoll_wait's error if that fails (the set is closed then too).
func (e *Set) Loop(event func(data uint64)) error {
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
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range evs[:n] {
			data := eventData(&ev)
			if data == wakeData {
				return nil
			}
			event(data)
		}
	}
}

// Close ends the loop, which closes the set.
func (e *Set) Close() {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.closed {
		var one = [8]byte{1}
		unix.Write(e.wake, one[:])
	}
}

func (e *Set) release() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.f.Close()
	unix.Close(e.wake)
}

// wakeData tags the eventfd in the set.
const wakeData = ^uint64(0)

// Event is an epoll_event for events with data, the 64-bit epoll_data that x/sys splits into
// Fd and Pad.
func Event(events uint32, data uint64) unix.EpollEvent {
	ev := unix.EpollEvent{Events: events}
	*(*uint64)(unsafe.Pointer(&ev.Fd)) = data
	return ev
}

func eventData(ev *unix.EpollEvent) uint64 { return *(*uint64)(unsafe.Pointer(&ev.Fd)) }
