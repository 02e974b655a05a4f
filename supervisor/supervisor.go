package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/internal/epoll"
	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/notify"
)

// Supervisor answers the trapped socket calls of every process under one filter, backing their
// AF_INET/AF_INET6 stream, datagram and ICMP sockets with the stacks of the virtual networks,
// or with host sockets where its Policy sends them to the host's network.
type Supervisor struct {
	l      *notify.Listener
	tasks  *notify.Tasks
	stack  *netstack.Stack   // the first network's: loopback, wildcard listeners, the responder
	stacks []*netstack.Stack // every network's, stack first
	policy Policy
	links  func() []Link // the networks' interface names and MTUs (nil: defaults)
	log    *slog.Logger

	mu    sync.Mutex
	socks map[uint64]emulated // by inode of the program's end of the socketpair

	redirects atomic.Pointer[redirectTable]
	fdCursor  atomic.Uint32  // where the search for a free number in the datagram range starts
	fdOutside atomic.Bool    // a datagram socket was placed outside the range (warned once)
	loopbacks *loopbackPorts // the programs' sockets that loopback destinations reach
	mover     *epollMover    // carries epoll registrations over fd swaps (started on first use)

	hup      *hangups
	readable *readable
	verbose  bool // debug logging is on: log every call
	stats    stats
	fdWarned atomic.Int64 // when ztnc-run last warned it was out of file descriptors (ns)

	fatal     chan error // a failure the programs must not outlive
	fatalOnce sync.Once
	done      chan struct{}
	closeOnce sync.Once
}

// New makes a supervisor for the processes behind l, on stack.
func New(l *notify.Listener, stack *netstack.Stack, log *slog.Logger) (*Supervisor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{
		l:      l,
		tasks:  notify.NewTasks(),
		stack:  stack,
		stacks: []*netstack.Stack{stack},
		log:    log,
		socks:  make(map[uint64]emulated),
		fatal:  make(chan error, 1),
		done:   make(chan struct{}),
	}
	s.loopbacks = &loopbackPorts{}
	s.verbose = log.Enabled(context.Background(), slog.LevelDebug)
	h, err := newHangups(s)
	if err != nil {
		return nil, err
	}
	s.hup = h
	if s.readable, err = newReadable(s); err != nil {
		h.close()
		return nil, err
	}
	return s, nil
}

// SetPolicy sets where destinations outside the virtual networks go (before Serve; the
// default is the host's network). The filter must come from the same policy's Spec.
func (s *Supervisor) SetPolicy(p Policy) { s.policy = p }

// Loopbacks is an index of the programs' sockets that loopback destinations reach (listeners
// and bound datagram sockets on a loopback or wildcard address).
type Loopbacks struct{ ports loopbackPorts }

// ShareLoopbacks makes supervisors on the same first stack share one index (before Serve):
// programs attached to one instance at different times, each under its own supervisor, then
// reach each other's listeners at 127.0.0.1 and ::1, as processes of one container do.
func (s *Supervisor) ShareLoopbacks(l *Loopbacks) { s.loopbacks = &l.ports }

// AddNetwork adds the stack of another joined network (before Serve): connects and sends go
// to the network whose routes hold the destination, and wildcard listeners are reachable
// from every network.
func (s *Supervisor) AddNetwork(st *netstack.Stack) { s.stacks = append(s.stacks, st) }

// Serve answers notifications until Close, until no process is left (nil), or until the
// supervisor fails (the error; the caller must then kill the programs, whose sockets no longer
// work).
func (s *Supervisor) Serve() error {
	recvErr := make(chan error, 1)
	go func() {
		// One goroutine receives and answers: the short handlers run inline. It is not locked
		// to its thread: a locked goroutine that blocks on a lock inside the stack needs its own
		// thread woken to go on, which costs tens of microseconds per call on virtual machines.
		recvErr <- s.receive()
	}()
	select {
	case err := <-recvErr:
		if errors.Is(err, notify.ErrClosed) || errors.Is(err, unix.EPIPE) {
			return nil
		}
		return err
	case err := <-s.fatal:
		return err
	}
}

func (s *Supervisor) receive() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("supervisor panic: %v\n%s", r, debug.Stack())
		}
	}()
	for {
		// Each call gets its own: blocking calls are answered from goroutines.
		c := &call{s: s}
		if err := s.l.Receive(&c.Notification); err != nil {
			return err
		}
		s.dispatch(c)
	}
}

// Close stops serving and releases every emulated socket; programs still running see their
// connections end and further socket calls fail (ENOSYS).
func (s *Supervisor) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.l.Close()
		s.hup.close()
		s.readable.close()
		s.mu.Lock()
		socks := s.socks
		s.socks = map[uint64]emulated{}
		if s.mover != nil {
			s.mover.close()
		}
		s.mu.Unlock()
		for _, sk := range socks {
			sk.release()
		}
		s.tasks.Close()
	})
}

// goSafe runs f on its own goroutine; a panic there is a supervisor failure.
func (s *Supervisor) goSafe(f func()) { go s.guard(f) }

// goPooled is goSafe on a reused goroutine (netstack.Go), for short work per connection that
// runs deep call chains: a new goroutine would grow its stack, a copy each time.
func (s *Supervisor) goPooled(f func()) { netstack.Go(func() { s.guard(f) }) }

// guard runs f; a panic there is a supervisor failure. For the supervisor's code that runs on
// other goroutines (its own, or the stack's callbacks).
func (s *Supervisor) guard(f func()) {
	defer func() {
		if r := recover(); r != nil {
			s.fail(fmt.Errorf("supervisor panic: %v\n%s", r, debug.Stack()))
		}
	}()
	f()
}

// watchSet delivers a set's events to event until the set is closed; an epoll failure fails
// the supervisor.
func (s *Supervisor) watchSet(set *epoll.Set, event func(data uint64)) {
	if err := set.Loop(event); err != nil {
		s.fail(err)
	}
}

func (s *Supervisor) fail(err error) {
	s.fatalOnce.Do(func() { s.fatal <- err })
}

// call is one trapped call being answered.
type call struct {
	notify.Notification
	s   *Supervisor
	fd  int      // the socket fd argument (all trapped calls but socket)
	end *progEnd // the copy of the program's end the call was looked up by; closed once answered
}

// errContinue marks a call that is not ours: the kernel runs it.
var errContinue = errors.New("continue")

// errAnswered marks a call a handler has answered itself (or handed to a goroutine that will).
var errAnswered = errors.New("answered")

func (s *Supervisor) dispatch(c *call) {
	start := time.Now()
	n := &c.Notification
	var val int64
	var err error
	if n.Nr == unix.SYS_SOCKET {
		err = s.socket(c)
	} else {
		val, err = s.onSocket(c)
	}
	c.answer(val, err)
	// The program's thread runs on from the answer: what is left waits until then.
	c.end.close()
	s.stats.record(n.Nr, err, start)
}

// answer sends the reply for val/err unless the handler already did. It returns the send's
// error: notify.ErrGone when the call had gone meanwhile.
func (c *call) answer(val int64, err error) error {
	var serr error
	switch {
	case err == nil:
		c.debug("0")
		serr = c.s.l.Return(c.ID, val)
	case err == errAnswered:
		return nil
	case err == errContinue:
		serr = c.s.l.Continue(c.ID)
	default:
		var errno unix.Errno
		if !errors.As(err, &errno) {
			c.s.log.Error("socket call failed", "call", callName(c.Nr), "pid", c.Pid, "err", err)
			errno = unix.EIO
		}
		c.debug(errno.Error())
		serr = c.s.l.Fail(c.ID, errno)
	}
	if serr != nil && serr != notify.ErrGone {
		c.s.log.Warn("answer", "call", callName(c.Nr), "pid", c.Pid, "err", serr)
	}
	return serr
}

// debug logs an emulated call's result (at debug level, i.e. with -v).
func (c *call) debug(result string) {
	if c.s.verbose {
		c.s.log.Debug(callName(c.Nr), "pid", c.Pid, "fd", c.fd, "result", result)
	}
}

// onSocket handles the calls whose first argument is a socket fd.
func (s *Supervisor) onSocket(c *call) (int64, error) {
	c.fd = int(int32(c.Args[0]))
	if isNameIndexIoctl(c) {
		return 0, s.nameIndexIoctl(c)
	}
	e, pc, err := s.lookup(c.Pid, c.fd)
	if err != nil || e == nil {
		// Not ours, or no such fd (the kernel reports EBADF/ENOTSOCK itself). Under isolation
		// a host socket's destinations are checked first.
		if err == nil && s.policy.Isolate {
			return s.isolatedCall(c)
		}
		return 0, errContinue
	}
	c.end = pc // handlers take it over by setting c.end to nil
	if !readsFirst(e, c.Nr) && !s.l.Valid(c.ID) {
		// The thread died and its id may already name another thread, whose fd we just
		// looked at: do nothing.
		return 0, errAnswered
	}
	if isNativeOpt(c) {
		return 0, c.nativeOpt()
	}
	switch sk := e.(type) {
	case *socket:
		return 0, sk.handle(c, &c.end)
	case *dgram:
		return sk.handle(c, &c.end)
	case *netlinkSock:
		return sk.handle(c, &c.end)
	}
	return 0, errContinue
}

// readsFirst reports whether e's handler of call nr reads the program's memory (and then checks
// that the call is still valid, see call.read) before it acts: for those the check after the
// fd lookup would be a second one. The others act on the socket first.
func readsFirst(e emulated, nr int32) bool {
	if _, ok := e.(*netlinkSock); ok {
		return false
	}
	switch nr {
	case unix.SYS_CONNECT, unix.SYS_BIND, unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME,
		unix.SYS_GETSOCKOPT, unix.SYS_SETSOCKOPT:
		return true
	}
	return false
}

// handle answers a call on a stream socket.
func (sk *socket) handle(c *call, pc **progEnd) error {
	switch c.Nr {
	case unix.SYS_CONNECT:
		return sk.connect(c, pc)
	case unix.SYS_BIND:
		return sk.bind(c)
	case unix.SYS_LISTEN:
		return sk.listen(c)
	case unix.SYS_ACCEPT:
		return sk.accept(c, pc, 0)
	case unix.SYS_ACCEPT4:
		return sk.accept(c, pc, int(int32(c.Args[3])))
	case unix.SYS_GETSOCKNAME:
		return sk.getsockname(c)
	case unix.SYS_GETPEERNAME:
		return sk.getpeername(c)
	case unix.SYS_GETSOCKOPT:
		if int32(c.Args[1]) == unix.SOL_SOCKET && int32(c.Args[2]) == unix.SO_ERROR {
			p := *pc
			return c.getsockopt(func(int, int) ([]byte, error) { return intOpt(int(sk.soError(p))), nil })
		}
		if onProgEnd(optKey{int(int32(c.Args[1])), int(int32(c.Args[2]))}) {
			return c.progEndOption(*pc)
		}
		return c.getsockopt(sk.option)
	case unix.SYS_SETSOCKOPT:
		return sk.setsockopt(c, *pc)
	case unix.SYS_SHUTDOWN:
		return sk.shutdown(c, *pc)
	case unix.SYS_SENDTO, unix.SYS_SENDMSG, unix.SYS_SENDMMSG:
		if err := streamSend(c); err != errContinue {
			return err
		}
	}
	// Data calls with addresses (sendto/recvfrom with an address, the msg calls and ioctl on
	// an fd in the datagram range): the kernel runs them on the socketpair.
	return errContinue
}

// emulated is a socket the supervisor emulates: a stream *socket, a *dgram or a *netlinkSock.
type emulated interface {
	// release frees what the socket holds once the program's end is gone.
	release()
	// heldPort is the local port the socket holds that release would free, 0 if none.
	heldPort() uint16
}

// lookup finds the emulated socket behind fd of thread tid, returning with it a copy of the
// program's end (the caller closes it, or takes it over by setting *pc to nil).
func (s *Supervisor) lookup(tid uint32, fd int) (emulated, *progEnd, error) {
	cfd, err := s.tasks.GetFD(tid, fd)
	if err != nil {
		return nil, nil, err
	}
	// fstat and close of the copy never wait: made raw, like notify's calls (see there).
	var st unix.Stat_t
	if _, _, e := unix.RawSyscall(unix.SYS_FSTAT, uintptr(cfd), uintptr(unsafe.Pointer(&st)), 0); e != 0 || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		rawClose(cfd)
		if e != 0 {
			return nil, nil, e
		}
		return nil, nil, nil
	}
	s.mu.Lock()
	sk := s.socks[st.Ino]
	s.mu.Unlock()
	if sk == nil {
		rawClose(cfd)
		return nil, nil, nil
	}
	return sk, &progEnd{fd: cfd}, nil
}

func (s *Supervisor) register(ino uint64, e emulated) {
	s.mu.Lock()
	s.socks[ino] = e
	s.mu.Unlock()
}

func (s *Supervisor) unregister(ino uint64, e emulated) {
	s.mu.Lock()
	if s.socks[ino] == e {
		delete(s.socks, ino)
	}
	s.mu.Unlock()
}

// Sockets returns how many emulated sockets are alive (for tests and status).
func (s *Supervisor) Sockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.socks)
}

func callName(nr int32) string {
	switch nr {
	case unix.SYS_SOCKET:
		return "socket"
	case unix.SYS_CONNECT:
		return "connect"
	case unix.SYS_BIND:
		return "bind"
	case unix.SYS_LISTEN:
		return "listen"
	case unix.SYS_ACCEPT:
		return "accept"
	case unix.SYS_ACCEPT4:
		return "accept4"
	case unix.SYS_GETSOCKNAME:
		return "getsockname"
	case unix.SYS_GETPEERNAME:
		return "getpeername"
	case unix.SYS_GETSOCKOPT:
		return "getsockopt"
	case unix.SYS_SETSOCKOPT:
		return "setsockopt"
	case unix.SYS_SHUTDOWN:
		return "shutdown"
	case unix.SYS_SENDTO:
		return "sendto"
	case unix.SYS_RECVFROM:
		return "recvfrom"
	case unix.SYS_SENDMSG:
		return "sendmsg"
	case unix.SYS_RECVMSG:
		return "recvmsg"
	case unix.SYS_SENDMMSG:
		return "sendmmsg"
	case unix.SYS_RECVMMSG:
		return "recvmmsg"
	case unix.SYS_IOCTL:
		return "ioctl"
	}
	return fmt.Sprintf("syscall %d", nr)
}
