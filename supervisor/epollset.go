package supervisor

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// epollSet is an epoll set that one goroutine waits on (loop), with an eventfd in it that ends
// the loop (close). The hang-up watch and the readiness waits are each one.
type epollSet struct {
	epfd int
	wake int // eventfd: stops the loop
}

func newEpollSet() (epollSet, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return epollSet{}, fmt.Errorf("epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return epollSet{}, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventData(&ev, wakeData)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return epollSet{}, fmt.Errorf("epoll: %w", err)
	}
	return epollSet{epfd: epfd, wake: wake}, nil
}

// add puts fd in the set for events, tagged with data (never wakeData).
func (e epollSet) add(fd int, events uint32, data uint64) error {
	ev := unix.EpollEvent{Events: events}
	setEventData(&ev, data)
	return rawEpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// remove takes fd out of the set.
func (e epollSet) remove(fd int) { rawEpollCtl(e.epfd, unix.EPOLL_CTL_DEL, fd, nil) }

// loop calls event with the data of each event until close; an epoll failure fails the
// supervisor.
func (e epollSet) loop(s *Supervisor, event func(data uint64)) {
	evs := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(e.epfd, evs, -1)
		if err == unix.EINTR {
			continue
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

// close ends the loop.
func (e epollSet) close() {
	var one = [8]byte{1}
	unix.Write(e.wake, one[:])
}

// wakeData tags the eventfd in the set (no inode, no waiter key is all ones).
const wakeData = ^uint64(0)

// The 64-bit epoll_data of an event is split by x/sys into Fd and Pad.
func setEventData(ev *unix.EpollEvent, v uint64) { *(*uint64)(unsafe.Pointer(&ev.Fd)) = v }

func eventData(ev *unix.EpollEvent) uint64 { return *(*uint64)(unsafe.Pointer(&ev.Fd)) }
