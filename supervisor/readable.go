package supervisor

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// readable wakes calls that wait for a program's end to become readable (a blocking recvfrom
// with an address), or a host socket to become writable (a connect the supervisor makes),
// without a thread per waiter: one epoll set, one goroutine. A program with
// thousands of threads blocked in such calls costs timers and channels, not OS threads.
type readable struct {
	epfd int
	wake int // eventfd: stops the loop

	mu      sync.Mutex
	waiters map[uint64]chan struct{}
	next    uint64
}

func newReadable(s *Supervisor) (*readable, error) {
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
		return nil, err
	}
	r := &readable{epfd: epfd, wake: wake, waiters: map[uint64]chan struct{}{}}
	s.goSafe(func() { r.loop(s) })
	return r, nil
}

// watch returns a channel closed once fd has one of events (EPOLLIN, EPOLLOUT), an error or a
// hang-up, and a function that stops watching; the caller keeps fd open until it has called
// it.
func (r *readable) watch(fd int, events uint32) (<-chan struct{}, func(), error) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.next++
	key := r.next
	r.waiters[key] = ch
	r.mu.Unlock()
	ev := unix.EpollEvent{Events: events | unix.EPOLLONESHOT}
	setEventData(&ev, key)
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		r.mu.Lock()
		delete(r.waiters, key)
		r.mu.Unlock()
		return nil, nil, err
	}
	return ch, func() {
		unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		r.mu.Lock()
		delete(r.waiters, key)
		r.mu.Unlock()
	}, nil
}

func (r *readable) loop(s *Supervisor) {
	evs := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(r.epfd, evs, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			s.fail(fmt.Errorf("epoll_wait: %w", err))
			return
		}
		for _, ev := range evs[:n] {
			key := eventData(&ev)
			if key == wakeData {
				return
			}
			r.mu.Lock()
			if ch, ok := r.waiters[key]; ok {
				close(ch)
				delete(r.waiters, key)
			}
			r.mu.Unlock()
		}
	}
}

func (r *readable) close() {
	var one = [8]byte{1}
	unix.Write(r.wake, one[:])
}
