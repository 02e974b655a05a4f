package supervisor

import (
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/notify"
)

// An emulated socket is an AF_UNIX stream socketpair: the program holds one end (P) under the
// fd number socket() returned, the supervisor the other (S). Its identity is P's inode, so it
// follows the open file through dup, fork, SCM_RIGHTS and exec, and the program's last close of
// P shows as a hang-up on S.
//
// Until the socket is connected, P must look like a TCP socket that is not: no EPOLLOUT (a
// non-blocking connect's caller waits for it), no EPOLLIN unless a connection can be accepted.
// af_unix reports P writable while (its queued bytes << 2) <= its SO_SNDBUF, so the supervisor
// shrinks P's send buffer to the minimum and writes some bytes from P into S that it does not
// read ("junk"): P then is neither writable nor readable, and writes to it fail with EAGAIN
// or block, as on a TCP socket in SYN_SENT. Opening P restores its send buffer and drains
// exactly the junk from S, which raises the EPOLLOUT edge. A listener's P stays closed for
// writing; it is readable exactly while S has written it "tokens", one per connection waiting
// to be accepted, so poll, epoll (EPOLLEXCLUSIVE included), and prefork servers work natively,
// and no other process can reach the listener.
type socket struct {
	s   *Supervisor
	ino uint64
	v6  bool
	sfd int // S; -1 once handed to Splice or closed

	mu       sync.Mutex
	state    sockState
	ep       *netstack.TCPEndpoint
	st       *netstack.Stack // ep's
	bound    bool
	bindReq  netip.AddrPort // what the program bound (invalid: nothing)
	junk     int            // bytes in S's queue keeping P closed; 0 once open
	held     *progEnd       // a copy of P kept while connecting, to open P when done
	at       progRef        // where the program connected or accepted it (see CopyFD)
	acked    bool           // the program has been told EINPROGRESS for the current connect
	connTold bool           // a connect call has succeeded (Linux's SS_CONNECTED): later ones get EISCONN
	soErr    unix.Errno
	errTaken bool           // SO_ERROR reported why the spliced connection ended
	local    netip.AddrPort // fixed once connected (the endpoint may be gone later)
	peer     netip.AddrPort
	opts     map[optKey][]byte // options the stack does not handle, remembered for getsockopt
	changed  chan struct{}     // closed when the state changes (nil: nobody waits; see changes)

	// Listening.
	loopback     netip.AddrPort          // indexed in the supervisor's loopbacks (invalid: not)
	others       []*netstack.TCPEndpoint // a wildcard listener's endpoints on the other networks
	backlog      int
	pending      []*netstack.TCPEndpoint
	tokens       int
	cancelNotify func()
}

type sockState uint8

const (
	stFresh      sockState = iota // created, maybe bound
	stConnecting                  // connect in progress
	stConnected                   // spliced to the stack
	stListening
	stFailed // connect failed: the pair is spent
	stEnded  // connected, and the connection has ended
	stClosed // the program's end is gone
)

// maxTokens bounds the tokens written to a listener's P: each is a queued skb charged to S's
// send buffer; P needs only one to be readable.
const maxTokens = 64

// progEnd is a copy of the program's end P taken from a trapped thread (pidfd_getfd).
type progEnd struct{ fd int }

func (p *progEnd) close() {
	if p != nil && p.fd >= 0 {
		rawClose(p.fd)
		p.fd = -1
	}
}

// progRef names P by where a trapped call found it: a thread and the fd number it used.
type progRef struct {
	tid uint32
	fd  int
}

// CopyFD implements netstack.ProgramEnd: a copy of P taken from the thread that connected or
// accepted it, under the fd number it had there, or -1 when that thread or number no longer
// holds P (it exited, or the program moved or closed the fd: the inode tells).
func (sk *socket) CopyFD() int {
	cfd, err := sk.s.tasks.GetFD(sk.at.tid, sk.at.fd)
	if err != nil {
		return -1
	}
	if ino, err := rawInode(cfd); err != nil || ino != sk.ino {
		rawClose(cfd)
		return -1
	}
	return cfd
}

func (p *progEnd) nonblocking() bool {
	fl, err := rawFcntl(p.fd, unix.F_GETFL, 0)
	return err == nil && fl&unix.O_NONBLOCK != 0
}

// defaultSndbuf is the send buffer a fresh AF_UNIX socket gets (SO_SNDBUF as getsockopt reports
// it, i.e. doubled); opening P restores it.
var defaultSndbuf = sync.OnceValue(func() int {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 212992
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	v, err := unix.GetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err != nil {
		return 212992
	}
	return v
})

var junkBuf [4608]byte

// closeProgEnd makes P unwritable (see socket) and returns the number of junk bytes in S.
func closeProgEnd(p int) (int, error) {
	if err := rawSetsockoptInt(p, unix.SOL_SOCKET, unix.SO_SNDBUF, 1); err != nil {
		return 0, err
	}
	return rawSend(p, junkBuf[:], unix.MSG_DONTWAIT)
}

// openProgEnd restores P's send buffer (p is a copy of P) and drains the junk from S.
func (sk *socket) openProgEnd(p int) error {
	if sk.junk == 0 {
		return nil
	}
	if err := rawSetsockoptInt(p, unix.SOL_SOCKET, unix.SO_SNDBUF, defaultSndbuf()/2); err != nil {
		return err
	}
	var buf [len(junkBuf)]byte
	for sk.junk > 0 {
		n, err := rawRecv(sk.sfd, buf[:min(sk.junk, len(buf))])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		sk.junk -= n
	}
	sk.junk = 0
	return nil
}

// socket emulates socket(AF_INET/AF_INET6, SOCK_STREAM, 0|IPPROTO_TCP), and hands datagram and
// raw sockets to socketDgram.
func (s *Supervisor) socket(c *call) error {
	domain, typ, proto := int(int32(c.Args[0])), int(int32(c.Args[1])), int(int32(c.Args[2]))
	if typ&^(sockTypeMask|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return unix.EINVAL
	}
	if domain == unix.AF_NETLINK {
		return s.socketNetlink(c)
	}
	if t := typ & sockTypeMask; t == unix.SOCK_DGRAM || t == unix.SOCK_RAW {
		return s.socketDgram(c, domain == unix.AF_INET6, t, proto)
	}
	if proto != 0 && proto != unix.IPPROTO_TCP {
		return unix.EPROTONOSUPPORT
	}
	sk, p, err := s.newSocket(domain == unix.AF_INET6, typ&unix.SOCK_NONBLOCK != 0)
	if err != nil {
		return err // ENFILE, EMFILE, ENOMEM: the program's socket() would fail the same way
	}
	defer rawClose(p)
	if _, err := s.l.AddFDReturn(c.ID, p, typ&unix.SOCK_CLOEXEC != 0); err != nil {
		// Nothing was installed. The socketpair goes when p closes (hang-up on S).
		if err == notify.ErrGone {
			return errAnswered
		}
		return err
	}
	if s.verbose {
		s.log.Debug("socket", "pid", c.Pid, "ino", sk.ino, "v6", sk.v6)
	}
	return errAnswered
}

// newSocket makes the socketpair of a new socket, P closed (see socket), and starts tracking
// it. The caller injects P and closes its copy.
func (s *Supervisor) newSocket(v6, nonblocking bool) (*socket, int, error) {
	p, sfd, err := s.socketpair(unix.SOCK_STREAM | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK)
	if err != nil {
		return nil, -1, err
	}
	junk, err := closeProgEnd(p)
	if err == nil && !nonblocking {
		_, err = rawFcntl(p, unix.F_SETFL, unix.O_RDWR)
	}
	var ino uint64
	if err == nil {
		ino, err = rawInode(p)
	}
	if err != nil {
		unix.Close(p)
		unix.Close(sfd)
		return nil, -1, err
	}
	sk := &socket{s: s, ino: ino, v6: v6, sfd: sfd, junk: junk}
	s.register(sk.ino, sk)
	if err := s.hup.watch(sfd, sk.ino); err != nil {
		s.unregister(sk.ino, sk)
		unix.Close(p)
		unix.Close(sfd)
		return nil, -1, err
	}
	return sk, p, nil
}

// ensureEndpoint creates the stack endpoint on first need (bind, connect, listen, options),
// on the first network's stack unless a bind or connect chose another. sk.mu is held.
func (sk *socket) ensureEndpoint() error {
	if sk.ep != nil {
		return nil
	}
	return sk.endpointOn(sk.s.stack)
}

// endpointOn makes sure the endpoint is on stack st: made there, or, when an option or a
// wildcard bind made it on another network's stack, made again there with the options and
// the bind replayed. sk.mu is held.
func (sk *socket) endpointOn(st *netstack.Stack) error {
	if sk.ep != nil && sk.st == st {
		return nil
	}
	ep, err := st.NewTCP(sk.v6)
	if err != nil {
		return err
	}
	for k, v := range sk.opts {
		ep.SetSockOpt(k.level, k.name, v)
	}
	if sk.bindReq.IsValid() {
		if err := ep.Bind(sk.bindReq); err != nil {
			ep.Close()
			return err
		}
	}
	if sk.ep != nil {
		sk.ep.Close()
	}
	sk.ep, sk.st = ep, st
	return nil
}

// setState changes the state and wakes whoever waits on it. sk.mu is held.
func (sk *socket) setState(st sockState) {
	sk.state = st
	sk.wake()
}

// changes returns a channel closed at the next state change. sk.mu is held.
func (sk *socket) changes() <-chan struct{} {
	if sk.changed == nil {
		sk.changed = make(chan struct{})
	}
	return sk.changed
}

func (sk *socket) wake() {
	if sk.changed != nil {
		close(sk.changed)
		sk.changed = nil
	}
}

// heldPort is the port of the endpoint release would close: not a connection's, which the
// splice owns.
func (sk *socket) heldPort() uint16 {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.ep == nil || sk.state == stConnected || sk.state == stEnded || sk.state == stClosed {
		return 0
	}
	return sk.ep.LocalAddr().Port()
}

// release frees everything the socket holds once the program's end is gone or the supervisor
// stops.
func (sk *socket) release() {
	sk.mu.Lock()
	if sk.state == stClosed {
		sk.mu.Unlock()
		return
	}
	prev := sk.state
	sk.setState(stClosed)
	if sk.cancelNotify != nil {
		sk.cancelNotify()
		sk.cancelNotify = nil
	}
	for _, p := range sk.pending {
		p.Abort()
	}
	sk.pending = nil
	sk.unindexLoopback()
	if sk.ep != nil && prev != stConnected && prev != stEnded {
		sk.ep.Close()
	}
	sk.closeOthers()
	sk.held.close()
	sk.held = nil
	if sk.sfd >= 0 {
		unix.Close(sk.sfd)
		sk.sfd = -1
	}
	sk.mu.Unlock()
	sk.s.unregister(sk.ino, sk)
}
