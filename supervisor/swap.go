package supervisor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/internal/epoll"
	"github.com/ztnc/ztnc/notify"
)

// Swapping a program's fd: when a socket's destination turns out to be elsewhere than where
// its file lives (a host destination for a socketpair-backed socket), the supervisor puts
// another file at the same fd number (ADDFD with SETFD, like dup2, keeping close-on-exec) and
// re-registers the new file in the program's epoll instances under the same number, events
// and data, so that a program which registered the socket before connect() (nginx does, for
// its upstreams) keeps getting its events. The old file's registrations go away with its last
// reference, which the supervisor drops right after.
//
// Other fds the program holds for the old socket (a dup made before connect) keep the old
// socket, which stays unconnected.

// swapFD replaces fd c.fd of the trapped thread, now the socket whose file has inode ino, by
// a copy of nf.
func (c *call) swapFD(nf int, ino uint64) error {
	cloexec, err := fdCloexec(c.Pid, c.fd)
	if err != nil {
		return unix.EBADF
	}
	watches, err := epollWatches(c.Pid, c.fd, ino)
	if err != nil {
		c.s.log.Debug("epoll registrations", "pid", c.Pid, "fd", c.fd, "err", err)
	}
	if err := c.s.l.AddFDAt(c.ID, nf, c.fd, cloexec); err != nil {
		if err == notify.ErrGone {
			return errAnswered
		}
		return err
	}
	for _, w := range watches {
		if err := c.s.carryEpoll(c.Pid, w, nf, c.fd); err != nil {
			c.s.log.Warn("epoll registration not carried over", "pid", c.Pid, "fd", c.fd, "epfd", w.epfd, "err", err)
		}
	}
	return nil
}

// epollWatch is one registration of a program's fd in one of its epoll instances.
type epollWatch struct {
	epfd   int // the epoll instance's fd number in the program
	events uint32
	data   uint64
}

// epollWatches finds the registrations of fd (whose file has inode ino) in the epoll
// instances of thread tid's fd table: /proc/<tid>/fd names them, and each instance's fdinfo
// lists its targets ("tfd: N events: E data: D pos:P ino:I sdev:S"). It runs on every swap,
// so it reads the directory with one getdents buffer and readlinkat, without allocating per
// entry.
func epollWatches(tid uint32, fd int, ino uint64) ([]epollWatch, error) {
	dfd, err := unix.Open(procPath(tid, "fd"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	var out []epollWatch
	var buf [8192]byte
	var link [32]byte
	var info []byte
	const eventpoll = "anon_inode:[eventpoll]"
	for {
		n, err := unix.Getdents(dfd, buf[:])
		if err != nil {
			return out, err
		}
		if n <= 0 {
			return out, nil
		}
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				break
			}
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			if len(name) == 0 || name[0] == '.' {
				continue
			}
			l, err := unix.Readlinkat(dfd, string(name), link[:])
			if err != nil || l != len(eventpoll) || string(link[:l]) != eventpoll {
				continue
			}
			epfd, err := strconv.Atoi(string(name))
			if err != nil {
				continue
			}
			if info, err = readProc(procPath(tid, "fdinfo/"+string(name)), info[:cap(info)]); err != nil {
				continue
			}
			out = append(out, parseEpollInfo(info, epfd, fd, ino)...)
		}
	}
}

// parseEpollInfo picks the registrations of fd with inode ino from an epoll instance's
// fdinfo. An instance may watch thousands of fds (a server's connections): only the lines of
// fd ("tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x", fs/eventpoll.c) are
// split into fields.
func parseEpollInfo(b []byte, epfd, fd int, ino uint64) []epollWatch {
	var out []epollWatch
	key := []byte(fmt.Sprintf("tfd: %8d ", fd))
	for off := 0; ; {
		i := bytes.Index(b[off:], key)
		if i < 0 {
			return out
		}
		start := off + i
		off = start + len(key)
		if start > 0 && b[start-1] != '\n' {
			continue
		}
		line := b[start:]
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		if w, ok := parseEpollLine(string(line), epfd, ino); ok {
			out = append(out, w)
		}
	}
}

// parseEpollLine parses one target line of an epoll fdinfo, if its inode is ino.
func parseEpollLine(line string, epfd int, ino uint64) (epollWatch, bool) {
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "tfd:" || f[2] != "events:" || f[4] != "data:" {
		return epollWatch{}, false
	}
	events, err1 := strconv.ParseUint(f[3], 16, 32)
	data, err2 := strconv.ParseUint(f[5], 16, 64)
	if err1 != nil || err2 != nil {
		return epollWatch{}, false
	}
	for _, kv := range f[6:] {
		if v, ok := strings.CutPrefix(kv, "ino:"); ok {
			if i, err := strconv.ParseUint(v, 16, 64); err == nil && i == ino {
				return epollWatch{epfd: epfd, events: uint32(events), data: data}, true
			}
			return epollWatch{}, false
		}
	}
	return epollWatch{}, false
}

// carryEpoll registers file nf under number fd in the program's epoll instance w.epfd (of
// thread tid), with w's events and data.
func (s *Supervisor) carryEpoll(tid uint32, w epollWatch, nf, fd int) error {
	ep, err := s.tasks.GetFD(tid, w.epfd)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	s.mu.Lock()
	if s.mover == nil {
		if s.mover, err = newEpollMover(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	m := s.mover
	s.mu.Unlock()
	// EPOLLWAKEUP needs CAP_BLOCK_SUSPEND, which the supervisor may not hold; it only keeps
	// the system awake.
	return m.register(ep, nf, fd, epoll.Event(w.events&^unix.EPOLLWAKEUP, w.data))
}

// epollMover adds registrations under a chosen fd number. An epoll registration is keyed by
// the file and the number it was added under, and the program will modify and delete it by
// that number; the supervisor's own fd table has something else there. So the registration
// is made from one OS thread with a private, empty fd table (unshare(CLONE_FILES), then every
// inherited fd closed), where the file can be put at exactly that number. The thread stays
// locked to its goroutine and ends with it.
type epollMover struct {
	self int // pidfd of this process, in the private table: files come in with pidfd_getfd
	reqs chan moveReq
	stop chan struct{}
}

type moveReq struct {
	ep, nf, fd int // the epoll instance and the file, in the shared table; the number
	ev         unix.EpollEvent
	done       chan error
}

func newEpollMover() (*epollMover, error) {
	m := &epollMover{reqs: make(chan moveReq), stop: make(chan struct{})}
	ready := make(chan error)
	go m.loop(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return m, nil
}

func (m *epollMover) loop(ready chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread's fd table is its own
	if unix.Gettid() == os.Getpid() {
		// The main thread's table is the one pidfd_getfd reads: go on from another thread,
		// holding this one until then so that the new goroutine cannot land on it.
		started := make(chan error)
		go m.loop(started)
		err := <-started
		runtime.UnlockOSThread()
		ready <- err
		return
	}
	if err := unix.Unshare(unix.CLONE_FILES); err != nil {
		ready <- fmt.Errorf("unshare fd table: %w", err)
		return
	}
	// The private table starts as a copy of the shared one: drop every copy, so that this
	// thread keeps no file alive (a socket's hang-up, the seccomp listener's close).
	if err := unix.CloseRange(0, math.MaxUint32, 0); err != nil {
		ready <- fmt.Errorf("close_range: %w", err)
		return
	}
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		ready <- fmt.Errorf("pidfd_open self: %w", err)
		return
	}
	m.self = self // in the private table: it goes with the thread
	ready <- nil
	for {
		select {
		case r := <-m.reqs:
			r.done <- m.move(r)
		case <-m.stop:
			return
		}
	}
}

// move runs on the private thread.
func (m *epollMover) move(r moveReq) error {
	ep, err := m.take(r.ep, r.fd)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	nf, err := m.take(r.nf, r.fd)
	if err != nil {
		return err
	}
	defer unix.Close(nf)
	if err := unix.Dup3(nf, r.fd, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("dup3: %w", err)
	}
	defer unix.Close(r.fd)
	ev := r.ev
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, r.fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// take copies fd of the shared table into the private one, at a number other than avoid.
func (m *epollMover) take(fd, avoid int) (int, error) {
	c, err := unix.PidfdGetfd(m.self, fd, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_getfd: %w", err)
	}
	if c != avoid {
		return c, nil
	}
	d, err := unix.FcntlInt(uintptr(c), unix.F_DUPFD_CLOEXEC, avoid+1)
	unix.Close(c)
	return d, err
}

func (m *epollMover) register(ep, nf, fd int, ev unix.EpollEvent) error {
	done := make(chan error, 1)
	select {
	case m.reqs <- moveReq{ep: ep, nf: nf, fd: fd, ev: ev, done: done}:
		return <-done
	case <-m.stop:
		return unix.EBADF
	}
}

// close stops the thread.
func (m *epollMover) close() { close(m.stop) }
