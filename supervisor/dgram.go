package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/notify"
)

// A dgram is an emulated datagram socket: UDP, an ICMP echo ("ping") socket, or a raw ICMP
// socket emulated on an echo endpoint. The program holds one end (P) of an AF_UNIX
// SOCK_SEQPACKET socketpair, at a number in the datagram range (see fdRange); the stack's
// proxy (netstack Splice) holds the other from socket() on. Datagram boundaries, MSG_PEEK,
// MSG_TRUNC, MSG_DONTWAIT, blocking, poll and epoll all work natively on P, and so do read,
// write, send and recv: on a connected socket nothing is trapped.
//
// What the kernel cannot do on P is addresses: a destination per datagram (sendto, sendmsg)
// and the source of each (recvfrom, recvmsg). Those calls are trapped and answered here: sends
// go to the endpoint (WriteTo), receives take the datagram from P through a copy of it, with
// the header the proxy recorded for exactly that datagram (netstack ReadQueued).
type dgram struct {
	s    *Supervisor
	ino  uint64
	v6   bool
	kind dgramKind
	ep   *netstack.DatagramEndpoint
	st   *netstack.Stack // ep's

	mu      sync.Mutex
	recv    recvOpts
	opts    map[optKey][]byte // options the stack does not handle, remembered for getsockopt
	rawID   uint16            // raw ICMP: the identifier the program puts in its echo requests
	hasRaw  bool              // rawID is set
	closing bool
	bindReq netip.AddrPort                // what the program bound (invalid: nothing)
	rawCap  bool                          // the program had CAP_NET_RAW when it made the socket
	local   bool                          // the local address is known (bound): indexed if it is loopback's
	lo      netip.AddrPort                // indexed in the supervisor's loopbacks (invalid: not)
	relay   *hostRelay                    // the host's network, for unconnected sends there (nil: none yet)
	others  map[*netstack.Stack]*netRelay // the other networks (unconnected sends, wildcard binds)

	sendShut atomic.Bool // shut down for writing: trapped sends fail with EPIPE
}

type dgramKind uint8

const (
	kindUDP     dgramKind = iota
	kindPing              // SOCK_DGRAM, IPPROTO_ICMP/ICMPV6
	kindRawICMP           // SOCK_RAW, IPPROTO_ICMP/ICMPV6
)

// recvOpts are the options that add control messages to recvmsg.
type recvOpts struct {
	pktinfo, pktinfo6      bool
	ttl, hoplimit          bool
	tos, tclass            bool
	timestamp, timestampNS int // the option name the program set (0: off): SO_TIMESTAMP_OLD/NEW...
}

// capNetRaw is CAP_NET_RAW's bit in /proc/<pid>/status CapEff.
const capNetRaw = 13

// socketDgram emulates socket(AF_INET/AF_INET6, SOCK_DGRAM/SOCK_RAW, proto).
func (s *Supervisor) socketDgram(c *call, v6 bool, typ, proto int) error {
	var kind dgramKind
	icmp := unix.IPPROTO_ICMP
	if v6 {
		icmp = unix.IPPROTO_ICMPV6
	}
	switch {
	case typ == unix.SOCK_DGRAM && (proto == 0 || proto == unix.IPPROTO_UDP):
		kind = kindUDP
	case typ == unix.SOCK_DGRAM && proto == icmp:
		kind = kindPing
	case typ == unix.SOCK_DGRAM:
		return unix.EPROTONOSUPPORT
	case !hasCapability(c.Pid, capNetRaw):
		return unix.EPERM // as for any unprivileged process
	case proto == icmp:
		kind = kindRawICMP
	default:
		// Raw sockets of other protocols would need the whole IP layer of the virtual
		// network; refuse them as a kernel without that protocol would.
		return unix.EPROTONOSUPPORT
	}
	d, p, err := s.newDgram(s.stack, v6, kind, int(int32(c.Args[1]))&unix.SOCK_NONBLOCK != 0)
	if err != nil {
		return err
	}
	defer unix.Close(p)
	d.rawCap = kind != kindUDP && hasCapability(c.Pid, capNetRaw)
	// If nothing is installed, our copy of P closes below and the proxy sees the hang-up.
	if err := c.injectDatagramFD(p, int(int32(c.Args[1]))&unix.SOCK_CLOEXEC != 0); err != errAnswered {
		return err
	}
	if s.verbose {
		s.log.Debug("socket", "pid", c.Pid, "ino", d.ino, "v6", v6, "kind", kind)
	}
	return errAnswered
}

// newDgram makes a datagram socket of kind on stack st: its endpoint, spliced to S, and P,
// which the caller injects and closes.
func (s *Supervisor) newDgram(st *netstack.Stack, v6 bool, kind dgramKind, nonblocking bool) (*dgram, int, error) {
	var ep *netstack.DatagramEndpoint
	var err error
	if kind == kindUDP {
		ep, err = st.NewUDP(v6)
	} else {
		ep, err = st.NewPing(v6)
	}
	if err != nil {
		return nil, -1, err
	}
	p, sfd, err := s.socketpair(unix.SOCK_SEQPACKET | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK)
	if err != nil {
		ep.Close()
		return nil, -1, err
	}
	if !nonblocking {
		_, err = unix.FcntlInt(uintptr(p), unix.F_SETFL, unix.O_RDWR)
	}
	var sta unix.Stat_t
	if err == nil {
		err = unix.Fstat(p, &sta)
	}
	if err != nil {
		unix.Close(p)
		unix.Close(sfd)
		ep.Close()
		return nil, -1, err
	}
	d := &dgram{s: s, ino: sta.Ino, v6: v6, kind: kind, ep: ep, st: st}
	if kind == kindRawICMP && !v6 {
		// The IPv4 header a raw socket delivers carries the TTL.
		ep.SetSockOpt(unix.IPPROTO_IP, unix.IP_RECVTTL, intOpt(1))
	}
	s.register(d.ino, d)
	// The proxy owns S and the endpoint from here: when the program's last reference to P
	// closes, it closes both, and the socket is forgotten.
	if err := ep.Splice(os.NewFile(uintptr(sfd), "ztnc-dgram")); err != nil {
		s.unregister(d.ino, d)
		unix.Close(p)
		return nil, -1, err
	}
	done := ep.Done()
	s.goSafe(func() {
		select {
		case <-done:
		case <-s.done:
		}
		d.release()
	})
	return d, p, nil
}

// injectDatagramFD installs p in the calling process at a free number of the datagram range
// (close-on-exec if cloexec) and answers the call with that number; it returns errAnswered, or
// the error to answer with when nothing was installed. If the range is full, or the program
// lowered its fd limit below it (the injection fails with EBADF, or EMFILE), p goes at the
// lowest free number: the socket works, but sendmsg/recvmsg on it run untrapped (no addresses,
// no control messages), which ztnc-run warns about once.
func (c *call) injectDatagramFD(p int, cloexec bool) error {
	var err error = unix.EBADF // no number free in the range
	if target := c.s.freeDatagramFD(c.Pid); target >= 0 {
		_, err = c.s.l.AddFDReturnAt(c.ID, p, target, cloexec)
	}
	if errors.Is(err, unix.EBADF) || errors.Is(err, unix.EMFILE) {
		var nfd int
		if nfd, err = c.s.l.AddFDReturn(c.ID, p, cloexec); err == nil && !c.s.fdOutside.Swap(true) {
			r := datagramFDs()
			c.s.log.Warn("a datagram socket got an fd outside the range whose sendmsg/recvmsg ztnc-run traps: on it they carry no addresses (sendto/recvfrom still do)",
				"fd", nfd, "range", fmt.Sprintf("%d-%d", r.base, r.base+r.size-1),
				"hint", "more datagram sockets than the range holds, or the program lowered its fd limit (ulimit -n) below the range")
		}
	}
	if err != nil && err != notify.ErrGone {
		return err
	}
	return errAnswered // ErrGone: the call went away, nothing was installed
}

// freeDatagramFD finds a number in the datagram range that is free in thread tid's fd table,
// or -1. pidfd_getfd tells: EBADF for a free number. The search starts after the last number
// handed out, so a program's sockets get consecutive numbers without rescanning.
func (s *Supervisor) freeDatagramFD(tid uint32) int {
	r := datagramFDs()
	start := int(s.fdCursor.Load())
	for i := range r.size {
		off := (start + i) % r.size
		cfd, err := s.tasks.GetFD(tid, r.base+off)
		switch err {
		case unix.EBADF:
			s.fdCursor.Store(uint32((off + 1) % r.size))
			return r.base + off
		case nil:
			unix.Close(cfd)
		default:
			return -1
		}
	}
	return -1
}

// hasCapability reads whether thread tid has capability bit in its effective set.
func hasCapability(tid uint32, bit uint) bool {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("CapEff:")); ok {
			caps, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			return err == nil && caps&(1<<bit) != 0
		}
	}
	return false
}

func (d *dgram) heldPort() uint16 { return d.ep.LocalAddr().Port() }

// release forgets the socket once the proxy has closed it (the program's end is gone) or the
// supervisor stops.
func (d *dgram) release() {
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return
	}
	d.closing = true
	if d.lo.IsValid() {
		d.s.loopbacks.remove(true, d.lo)
	}
	relay, others := d.relay, d.others
	d.mu.Unlock()
	if relay != nil {
		relay.close()
	}
	for _, r := range others {
		r.close()
	}
	d.ep.Close()
	d.s.unregister(d.ino, d)
}

// noteLocal indexes the socket in the loopback index once it has a local address (bind,
// connect or the first send picks one), if it is a loopback or wildcard one: loopback
// destinations then reach it rather than the host.
func (d *dgram) noteLocal() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.local || d.closing || d.kind != kindUDP {
		return
	}
	la := d.ep.LocalAddr()
	if la.Port() == 0 {
		return
	}
	d.local = true
	if d.s.loopbacks.add(true, la) {
		d.lo = la
	}
}

// route decides where a datagram to ap goes (see Supervisor.route). Echo requests to
// loopback addresses are answered by the stack's loopback, as a container's would be.
func (d *dgram) route(ap netip.AddrPort) (routeKind, *netstack.Stack) {
	if d.kind != kindUDP && ap.Addr().Unmap().IsLoopback() {
		return toStack, d.s.stack
	}
	return d.s.route(d.kind == kindUDP, ap)
}

// hostType is the socket type and protocol of the host socket that stands for this one.
func (d *dgram) hostType() (typ, proto int) {
	icmp := unix.IPPROTO_ICMP
	if d.v6 {
		icmp = unix.IPPROTO_ICMPV6
	}
	switch d.kind {
	case kindPing:
		return unix.SOCK_DGRAM, icmp
	case kindRawICMP:
		return unix.SOCK_RAW, icmp
	}
	return unix.SOCK_DGRAM, 0
}

// handle answers a call on a datagram socket.
func (d *dgram) handle(c *call, pc **progEnd) (int64, error) {
	switch c.Nr {
	case unix.SYS_CONNECT:
		return 0, d.connect(c, *pc)
	case unix.SYS_BIND:
		return 0, d.bind(c)
	case unix.SYS_LISTEN, unix.SYS_ACCEPT, unix.SYS_ACCEPT4:
		return 0, unix.EOPNOTSUPP
	case unix.SYS_GETSOCKNAME:
		return 0, c.writeSockaddr(c.Args[1], c.Args[2], encodeSockaddr(d.ep.LocalAddr(), d.v6))
	case unix.SYS_GETPEERNAME:
		peer, err := d.peer()
		if err != nil {
			return 0, err
		}
		return 0, c.writeSockaddr(c.Args[1], c.Args[2], encodeSockaddr(peer, d.v6))
	case unix.SYS_GETSOCKOPT:
		if onProgEnd(optKey{int(int32(c.Args[1])), int(int32(c.Args[2]))}) {
			return 0, c.progEndOption(*pc)
		}
		return 0, c.getsockopt(d.option)
	case unix.SYS_SETSOCKOPT:
		return 0, d.setsockopt(c, *pc)
	case unix.SYS_SHUTDOWN:
		return 0, d.shutdown(c, *pc)
	case unix.SYS_SENDTO:
		return d.sendto(c, *pc)
	case unix.SYS_RECVFROM:
		return d.recvfrom(c, pc)
	case unix.SYS_SENDMSG:
		return d.sendmsg(c, *pc)
	case unix.SYS_RECVMSG:
		return d.recvmsg(c, pc)
	case unix.SYS_SENDMMSG:
		return d.sendmmsg(c, *pc)
	case unix.SYS_RECVMMSG:
		return d.recvmmsg(c, pc)
	case unix.SYS_IOCTL:
		return d.ioctl(c, *pc)
	}
	return 0, errContinue
}

// peer returns the connected peer as the program sees it, or ENOTCONN.
func (d *dgram) peer() (netip.AddrPort, error) {
	peer, err := d.ep.RemoteAddr()
	if err != nil {
		return netip.AddrPort{}, err
	}
	return d.s.redirectIn(d.kind == kindUDP, peer), nil
}

// connect emulates connect(2): a peer to send to and receive from, or AF_UNSPEC to dissolve
// the association. Unlike TCP it completes at once.
func (d *dgram) connect(c *call, p *progEnd) error {
	b, err := c.readSockaddr(c.Args[1], c.Args[2])
	if err != nil {
		return err
	}
	ap, unspec, err := decodeSockaddr(b, d.v6)
	if err != nil {
		return err
	}
	if unspec {
		return d.ep.Disconnect()
	}
	to, redirected := d.s.redirectOut(d.kind == kindUDP, ap)
	if !redirected {
		switch kind, st := d.route(to); {
		case kind == toHost:
			return d.toHost(c, p, to)
		case kind == unreachable:
			return unix.ENETUNREACH
		case st != d.st:
			return d.moveTo(c, p, st, to)
		}
	}
	err = d.ep.Connect(to)
	d.noteLocal()
	return err
}

// moveTo moves the socket to another network's stack for a connect to ap there: a new
// datagram socket on st, with the options and the bind replayed, takes the fd number (see
// swapFD).
func (d *dgram) moveTo(c *call, p *progEnd, st *netstack.Stack, ap netip.AddrPort) error {
	nd, np, err := d.s.newDgram(st, d.v6, d.kind, p.nonblocking())
	if err != nil {
		return err
	}
	defer unix.Close(np)
	copyNativeOpts(p.fd, np)
	d.mu.Lock()
	opts, bind, recv := maps.Clone(d.opts), d.bindReq, d.recv
	d.mu.Unlock()
	for k, v := range opts {
		nd.ep.SetSockOpt(k.level, k.name, v)
	}
	nd.opts, nd.recv = opts, recv
	if bind.IsValid() && bind.Addr().Unmap().IsUnspecified() {
		nd.ep.Bind(bind) // the same port if it is free there; else the connect picks one
	}
	if err := nd.ep.Connect(ap); err != nil {
		return err
	}
	if err := c.swapFD(np, d.ino); err != nil {
		return err
	}
	nd.noteLocal()
	return nil
}

// toHost moves the socket to the host's network for a connect to ap there: a host socket of
// the same kind takes its fd number (see swapFD), and the kernel connects it — with the
// program's own call in fall-through mode, with the checked address under isolation. From
// then on the program talks to its peer without the supervisor.
func (d *dgram) toHost(c *call, p *progEnd, ap netip.AddrPort) error {
	typ, proto := d.hostType()
	d.mu.Lock()
	opts, bind := maps.Clone(d.opts), d.bindReq
	d.mu.Unlock()
	opts = withNativeOpts(opts, p.fd)
	h, err := hostSocket(d.v6, typ, proto, p.nonblocking(), opts, bind)
	if err != nil {
		return err
	}
	defer unix.Close(h)
	if err := c.swapFD(h, d.ino); err != nil {
		return err
	}
	if d.s.verbose {
		d.s.log.Debug("to host", "pid", c.Pid, "fd", c.fd, "ino", d.ino, "dst", ap)
	}
	if !d.s.policy.Isolate {
		return errContinue
	}
	return c.connectHost(h, ap, d.v6)
}

// bind emulates bind(2) (for echo sockets the port is the echo identifier).
func (d *dgram) bind(c *call) error {
	b, err := c.readSockaddr(c.Args[1], c.Args[2])
	if err != nil {
		return err
	}
	ap, err := decodeBindAddr(b, d.v6)
	if err != nil {
		return err
	}
	err = d.s.bindReleasing(ap.Port(), d, func() error { return d.ep.Bind(ap) })
	if err == nil {
		d.mu.Lock()
		d.bindReq = ap
		d.mu.Unlock()
		d.noteLocal()
		if ap.Addr().Unmap().IsUnspecified() {
			// A wildcard bind receives from every network.
			for _, st := range d.s.stacks {
				if st != d.st {
					if _, err := d.otherNet(st); err != nil {
						d.s.log.Warn("bind on another network", "port", d.ep.LocalAddr().Port(), "err", err)
					}
				}
			}
		}
	}
	return err
}

// shutdown emulates shutdown(2). Like Linux's inet_shutdown it marks the socket shut down
// even when it then fails with ENOTCONN (unconnected): shutting a socket down is how
// threaded programs wake a thread blocked in its receive. Reading: P is shut down for reading,
// so that a receive waiting on it returns 0 at once, and so do later ones when nothing is
// queued, native and trapped receives alike (datagrams that arrive from then on are dropped;
// Linux would still queue them). Writing: trapped sends fail with EPIPE; a native send on a
// connected socket still sends.
func (d *dgram) shutdown(c *call, p *progEnd) error {
	how := int(int32(c.Args[1]))
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return unix.EINVAL
	}
	if how != unix.SHUT_WR {
		if err := unix.Shutdown(p.fd, unix.SHUT_RD); err != nil {
			return err
		}
	}
	if how != unix.SHUT_RD {
		d.sendShut.Store(true)
	}
	if _, err := d.ep.RemoteAddr(); err != nil {
		return unix.ENOTCONN
	}
	return nil
}

// checkOOB is the first check of a trapped send, as in Linux: no datagram protocol has urgent
// data.
func checkOOB(flags int) error {
	if flags&unix.MSG_OOB != 0 {
		return unix.EOPNOTSUPP
	}
	return nil
}
