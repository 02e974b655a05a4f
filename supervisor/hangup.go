package supervisor

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/internal/epoll"
)

// hangups notices when programs let go of their sockets.
//
// Before a socket is connected, S hangs up exactly when P's last reference is closed (nothing
// else shuts S down), so S sits in an epoll set with no events requested: EPOLLHUP is always
// reported. A connected socket is the splice's business; when the connection has ended, P may
// still be open (both directions shut down look like a hang-up on S too), so the supervisor
// asks the kernel whether P still exists (sock_diag, see unixDiag). It asks for many ended
// sockets at once — every lingerCheck, or as soon as lingerBatch have ended — since one
// question costs a walk of the kernel's table of AF_UNIX sockets whether it names one socket
// or lists them all. The same tick lets go of the pidfds of threads that have exited
// (notify.Tasks.Sweep).
type hangups struct {
	s   *Supervisor
	set *epoll.Set // every unconnected socket's S, tagged with its inode

	mu        sync.Mutex
	lingering map[*socket]struct{}
	fresh     int           // sockets that ended since the last sweep
	kick      chan struct{} // wakes the sweep early: lingerBatch sockets have ended
}

const (
	lingerCheck = 2 * time.Second
	lingerBatch = 64
)

func newHangups(s *Supervisor) (*hangups, error) {
	set, err := epoll.New()
	if err != nil {
		return nil, err
	}
	h := &hangups{s: s, set: set, lingering: make(map[*socket]struct{}), kick: make(chan struct{}, 1)}
	s.goSafe(func() { s.watchSet(set, h.hungUp) })
	s.goSafe(h.sweep)
	return h, nil
}

// watch adds a socket's S (sfd) with no events requested (EPOLLHUP is always reported). The
// event data is the socket's inode (the key of s.socks).
func (h *hangups) watch(sfd int, ino uint64) error { return h.set.Add(sfd, 0, ino) }

// unwatch removes S (before it is handed to the splice).
func (h *hangups) unwatch(sk *socket) { h.set.Remove(sk.sfd) }

// hungUp releases the socket whose S hung up: the program's last reference to P is gone.
func (h *hangups) hungUp(ino uint64) {
	h.s.mu.Lock()
	e := h.s.socks[ino]
	h.s.mu.Unlock()
	if e != nil {
		e.release()
	}
}

// ended is called when a connected socket's splice has finished: the socket is released by
// a later sweep once its program's end is gone.
func (h *hangups) ended(sk *socket) {
	h.mu.Lock()
	h.lingering[sk] = struct{}{}
	h.fresh++
	n := h.fresh
	h.mu.Unlock()
	if n >= lingerBatch {
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
}

func (h *hangups) sweep() {
	t := time.NewTicker(lingerCheck)
	defer t.Stop()
	for {
		select {
		case <-h.s.done:
			return
		case <-t.C:
			h.s.tasks.Sweep()
		case <-h.kick:
		}
		h.mu.Lock()
		h.fresh = 0
		inos := make(map[uint64]bool, len(h.lingering))
		for sk := range h.lingering {
			inos[sk.ino] = true
		}
		h.mu.Unlock()
		if len(inos) == 0 {
			continue
		}
		alive := unixSocketsExisting(inos)
		var gone []*socket
		h.mu.Lock()
		for sk := range h.lingering {
			if inos[sk.ino] && !alive[sk.ino] {
				gone = append(gone, sk)
				delete(h.lingering, sk)
			}
		}
		h.mu.Unlock()
		for _, sk := range gone {
			sk.release()
		}
	}
}

func (h *hangups) close() { h.set.Close() }

// bindReleasing runs bind and, when the port is taken by sockets other than self whose
// program end is already closed, releases them at once and binds again. The supervisor
// notices a close asynchronously, and a program that closes a socket and binds its port again
// must not find it taken, as on Linux (programs look for a free port this way). A socket just
// closed may stay open a moment longer through the supervisor's own copy of it, taken for a
// call it is finishing: while another socket holds the port, bind keeps trying for up to
// closeGrace.
func (s *Supervisor) bindReleasing(port uint16, self emulated, bind func() error) error {
	err := bind()
	deadline := time.Now().Add(closeGrace)
	for err == unix.EADDRINUSE && port != 0 {
		held, released := s.releaseClosed(port, self)
		if released {
			if err = bind(); err != unix.EADDRINUSE {
				return err
			}
		}
		if !held || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return err
}

// closeGrace bounds bindReleasing's wait for the supervisor's copies of closed sockets.
const closeGrace = 20 * time.Millisecond

// releaseClosed releases the sockets other than self that hold port and whose program end is
// closed, and reports whether any socket holds the port and whether it released any.
func (s *Supervisor) releaseClosed(port uint16, self emulated) (held, released bool) {
	s.mu.Lock()
	cands := make(map[uint64]emulated)
	for ino, e := range s.socks {
		if e != self {
			cands[ino] = e
		}
	}
	s.mu.Unlock()
	for ino, e := range cands {
		if e.heldPort() != port {
			continue
		}
		held = true
		if !unixSocketExists(ino) {
			e.release()
			released = true
		}
	}
	return held, released
}
