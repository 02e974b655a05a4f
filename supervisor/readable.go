package supervisor

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/internal/epoll"
)

// readable wakes calls that wait for a program's end to become readable (a blocking recvfrom
// with an address), or a host socket to become writable (a connect the supervisor makes),
// without a thread per waiter: one epoll set, one goroutine. A program with
// thousands of threads blocked in such calls costs timers and channels, not OS threads.
type readable struct {
	set *epoll.Set

	mu      sync.Mutex
	waiters map[uint64]chan struct{}
	next    uint64
}

func newReadable(s *Supervisor) (*readable, error) {
	set, err := epoll.New()
	if err != nil {
		return nil, err
	}
	r := &readable{set: set, waiters: map[uint64]chan struct{}{}}
	s.goSafe(func() { s.watchSet(set, r.ready) })
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
	if err := r.set.Add(fd, events|unix.EPOLLONESHOT, key); err != nil {
		r.mu.Lock()
		delete(r.waiters, key)
		r.mu.Unlock()
		return nil, nil, err
	}
	return ch, func() {
		r.set.Remove(fd)
		r.mu.Lock()
		delete(r.waiters, key)
		r.mu.Unlock()
	}, nil
}

// ready wakes the waiter with key.
func (r *readable) ready(key uint64) {
	r.mu.Lock()
	if ch, ok := r.waiters[key]; ok {
		close(ch)
		delete(r.waiters, key)
	}
	r.mu.Unlock()
}

func (r *readable) close() { r.set.Close() }
