package netstack

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// MaxListenBacklog is Linux's net.core.somaxconn default; listen(2) clamps to it.
const MaxListenBacklog = 4096

// Keepalive settings a program can choose (bits of TCPEndpoint.keepaliveUser), and what Linux
// reports for those it did not choose (net.ipv4.tcp_keepalive_*).
const (
	kaEnable = 1 << iota
	kaIdle
	kaIntvl
	kaCnt

	linuxKeepaliveIdle  = 7200
	linuxKeepaliveIntvl = 75
	linuxKeepaliveCnt   = 9
)

// TCPEndpoint is a TCP socket of the stack, with Linux's semantics and errno values: every
// error it returns is a syscall.Errno. It is safe for concurrent use.
//
// A program's socket is backed by one TCPEndpoint from the first bind/connect/listen. Once
// established (Accept, or Connect completed), Splice connects it to the program's end of a
// socketpair; from then on data flows without the supervisor.
type TCPEndpoint struct {
	notifier
	s  *Stack
	ep tcpip.Endpoint
	v6 bool

	// keepaliveUser records which keepalive settings the program chose itself (kaEnable,
	// kaIdle, ...): Splice keeps those and sets the others for the proxy, and GetSockOpt
	// shows the program its own choices or Linux's defaults, not the proxy's.
	keepaliveUser atomic.Uint32
	// noDelay is the program's TCP_NODELAY. The stack's Nagle is always off (see tune.go);
	// this is what getsockopt reports.
	noDelay atomic.Bool
	// cork is the program's TCP_CORK, which getsockopt reports: the splice uncorks the
	// endpoint when the program has finished writing.
	cork atomic.Bool

	// spliced is set once by Splice; Close and Abort then leave the endpoint to it.
	spliced atomic.Pointer[splice]
	// progEnd is how the proxy reaches the program's end, set before Splice (nil: it cannot).
	progEnd ProgramEnd
	once    sync.Once
}

// NewTCP creates a TCP endpoint, IPv6 (dual-stack unless IPV6_V6ONLY is set) when v6.
func (s *Stack) NewTCP(v6 bool) (*TCPEndpoint, error) {
	proto := ipv4.ProtocolNumber
	if v6 {
		proto = ipv6.ProtocolNumber
	}
	wq := new(waiter.Queue)
	ep, err := s.st.NewEndpoint(tcp.ProtocolNumber, proto, wq)
	if err != nil {
		return nil, errno(err)
	}
	return s.wrapTCP(ep, wq, v6), nil
}

func (s *Stack) wrapTCP(ep tcpip.Endpoint, wq *waiter.Queue, v6 bool) *TCPEndpoint {
	return &TCPEndpoint{notifier: notifier{wq: wq, ep: ep}, s: s, ep: ep, v6: v6}
}

// V6 reports whether this is an IPv6 (AF_INET6) endpoint.
func (e *TCPEndpoint) V6() bool { return e.v6 }

// Bind binds to a local address; port 0 picks an ephemeral port. EADDRINUSE when taken
// (SO_REUSEADDR set before is honoured), EADDRNOTAVAIL when the address is not ours, EINVAL
// when already bound.
func (e *TCPEndpoint) Bind(local netip.AddrPort) error {
	fa, err := bindAddress(e.ep, local, e.v6)
	if err != nil {
		return err
	}
	return asError(e.ep.Bind(fa))
}

// minAcceptQueue is the least the stack queues per listener, whatever the backlog. A burst of
// SYNs is handled in one go by the stack's goroutine, before the owner can accept any (a
// ztnc-run has one processor), and gVisor drops the SYNs that find its queue full; their
// clients retry only after a second, then three, all at once again. A program still sees no
// more than its backlog: the supervisor keeps the program's queue.
const minAcceptQueue = 128

// Listen starts listening; an unbound endpoint gets an ephemeral port. backlog is clamped to
// [0, 4096] as Linux does (negative: 4096).
func (e *TCPEndpoint) Listen(backlog int) error {
	if backlog < 0 || backlog > MaxListenBacklog {
		backlog = MaxListenBacklog
	}
	// Linux queues one connection more than the backlog (listen(fd, 0) still takes one);
	// gVisor queues exactly its capacity.
	return asError(e.ep.Listen(max(backlog+1, minAcceptQueue)))
}

// Accept returns an established connection, or EAGAIN when none is pending (wait for EventIn),
// EINVAL when not listening.
func (e *TCPEndpoint) Accept() (*TCPEndpoint, error) {
	n, wq, err := e.ep.Accept(nil)
	if err != nil {
		return nil, errno(err)
	}
	c := e.s.wrapTCP(n, wq, e.v6)
	// As on Linux, the connection starts with the listener's TCP_NODELAY and TCP_CORK.
	c.noDelay.Store(e.noDelay.Load())
	if e.cork.Load() {
		c.cork.Store(true)
		c.ep.SocketOptions().SetCorkOption(true)
	}
	return c, nil
}

// Connect starts connecting and returns EINPROGRESS; EventOut (or EventErr/EventHUp) tells
// when it has finished, and SoError then says how: 0, ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH,
// ENETUNREACH. A second Connect while connecting gives EALREADY, once connected EISCONN. As on
// Linux, a failed connect leaves the socket unusable: make a new endpoint to retry.
func (e *TCPEndpoint) Connect(remote netip.AddrPort) error {
	fa, err := destAddress(e.ep, remote, e.v6, true)
	if err != nil {
		return err
	}
	return asError(e.ep.Connect(fa))
}

// SoError returns and clears the pending socket error, like getsockopt(SO_ERROR); 0 if none.
func (e *TCPEndpoint) SoError() syscall.Errno {
	return soError(e.ep)
}

// soError reads the pending error. gVisor keeps two (the hard error of the connection and the
// last error) where Linux has one slot, so a refused connect would report twice: the first is
// returned and the rest cleared.
func soError(ep tcpip.Endpoint) syscall.Errno {
	first := errno(ep.SocketOptions().GetLastError())
	if first != 0 {
		for i := 0; i < 2 && ep.SocketOptions().GetLastError() != nil; i++ {
		}
	}
	return first
}

// LocalAddr returns the bound address (the unspecified address and port 0 when unbound).
func (e *TCPEndpoint) LocalAddr() netip.AddrPort { return localAddr(e.ep, e.v6) }

// RemoteAddr returns the peer's address, or ENOTCONN.
func (e *TCPEndpoint) RemoteAddr() (netip.AddrPort, error) { return remoteAddr(e.ep, e.v6) }

// Shutdown shuts down reading (SHUT_RD), writing (SHUT_WR, sends FIN) or both (SHUT_RDWR).
func (e *TCPEndpoint) Shutdown(how int) error {
	var f tcpip.ShutdownFlags
	switch how {
	case syscall.SHUT_RD:
		f = tcpip.ShutdownRead
	case syscall.SHUT_WR:
		f = tcpip.ShutdownWrite
	case syscall.SHUT_RDWR:
		f = tcpip.ShutdownRead | tcpip.ShutdownWrite
	default:
		return syscall.EINVAL
	}
	return asError(e.ep.Shutdown(f))
}

// Close closes the endpoint as close(2) does: FIN, or RST if received data was never read
// (or SO_LINGER with a zero timeout is set). On a spliced endpoint it ends the proxy: the
// program's end of the socketpair sees end of file.
func (e *TCPEndpoint) Close() {
	if sp := e.spliced.Load(); sp != nil {
		sp.stop(false, 0)
		return
	}
	e.once.Do(e.ep.Close)
}

// Abort resets the connection (RST) and closes the endpoint. On a spliced endpoint it ends
// the proxy as well.
func (e *TCPEndpoint) Abort() {
	if sp := e.spliced.Load(); sp != nil {
		sp.stop(true, 0)
		return
	}
	e.once.Do(e.ep.Abort)
}

// State returns the TCP state as Linux numbers it (TCP_ESTABLISHED = 1 ... TCP_CLOSING = 11),
// for TCP_INFO and diagnostics.
func (e *TCPEndpoint) State() uint8 {
	return linuxTCPState(tcp.EndpointState(e.ep.State()))
}

func linuxTCPState(s tcp.EndpointState) uint8 {
	switch s {
	case tcp.StateInitial, tcp.StateBound, tcp.StateError:
		return uint8(tcp.StateClose)
	case tcp.StateConnecting:
		return uint8(tcp.StateSynSent)
	}
	if s >= tcp.StateEstablished && s <= tcp.StateClosing {
		return uint8(s)
	}
	return uint8(tcp.StateClose)
}
