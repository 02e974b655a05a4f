package supervisor

import (
	"maps"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/notify"
)

// bind emulates bind(2).
func (sk *socket) bind(c *call) error {
	b, err := c.readSockaddr(c.Args[1], c.Args[2])
	if err != nil {
		return err
	}
	ap, err := decodeBindAddr(b, sk.v6)
	if err != nil {
		return err
	}
	st := sk.s.stackOf(ap.Addr())
	if st == nil {
		return unix.EADDRNOTAVAIL // not an address of any network (nor loopback, nor any)
	}
	return sk.s.bindReleasing(ap.Port(), sk, func() error { return sk.bindOn(st, ap) })
}

func (sk *socket) bindOn(st *netstack.Stack, ap netip.AddrPort) error {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.state != stFresh || sk.bound {
		return unix.EINVAL
	}
	if err := sk.endpointOn(st); err != nil {
		return err
	}
	if err := sk.ep.Bind(ap); err != nil {
		return err
	}
	sk.bound = true
	sk.bindReq = ap
	return nil
}

// listen emulates listen(2).
func (sk *socket) listen(c *call) error {
	backlog := int(int32(c.Args[1]))
	if backlog < 0 || backlog > netstack.MaxListenBacklog {
		backlog = netstack.MaxListenBacklog // as Linux: the backlog is taken as unsigned
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	switch sk.state {
	case stListening:
		if err := sk.ep.Listen(backlog); err != nil {
			return err
		}
		for _, ep := range sk.others {
			ep.Listen(backlog)
		}
		sk.backlog = backlog
		return nil
	case stFresh:
	default:
		return unix.EINVAL
	}
	if err := sk.ensureEndpoint(); err != nil {
		return err
	}
	if err := sk.ep.Listen(backlog); err != nil {
		return err
	}
	sk.backlog = backlog
	sk.bound = true
	sk.setState(stListening)
	if local := sk.ep.LocalAddr(); sk.s.loopbacks.add(false, local) {
		sk.loopback = local
	}
	sk.listenOthers(backlog)
	cancels := []func(){sk.ep.Notify(netstack.EventIn, func(netstack.Events) { sk.s.goSafe(sk.fill) })}
	for _, ep := range sk.others {
		cancels = append(cancels, ep.Notify(netstack.EventIn, func(netstack.Events) { sk.s.goSafe(sk.fill) }))
	}
	sk.cancelNotify = func() {
		for _, c := range cancels {
			c()
		}
	}
	sk.s.goSafe(sk.fill) // connections may be waiting already
	return nil
}

// listenOthers makes a wildcard listener reachable from every joined network: an endpoint
// listening on the same port on each other network's stack, whose connections join the
// socket's accept queue. A listener bound to one network's address (or to loopback) stays
// on that network. sk.mu is held.
func (sk *socket) listenOthers(backlog int) {
	local := sk.ep.LocalAddr()
	if !local.Addr().IsUnspecified() || len(sk.s.stacks) < 2 {
		return
	}
	for _, st := range sk.s.stacks {
		if st == sk.st {
			continue
		}
		ep, err := st.NewTCP(sk.v6)
		if err != nil {
			sk.s.log.Warn("listen on another network", "port", local.Port(), "err", err)
			continue
		}
		for k, v := range sk.opts {
			ep.SetSockOpt(k.level, k.name, v)
		}
		err = ep.Bind(local)
		if err == nil {
			err = ep.Listen(backlog)
		}
		if err != nil {
			sk.s.log.Warn("listen on another network", "port", local.Port(), "err", err)
			ep.Close()
			continue
		}
		sk.others = append(sk.others, ep)
	}
}

// closeOthers closes the listeners on the other networks. sk.mu is held.
func (sk *socket) closeOthers() {
	for _, ep := range sk.others {
		ep.Close()
	}
	sk.others = nil
}

// fill moves established connections from the stack's accept queue to the socket's (up to the
// backlog; Linux accepts one more than it) and writes tokens for them.
func (sk *socket) fill() {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	sk.fillLocked()
}

func (sk *socket) fillLocked() {
	if sk.state != stListening {
		return
	}
	n := len(sk.pending)
	for _, ep := range append([]*netstack.TCPEndpoint{sk.ep}, sk.others...) {
		for len(sk.pending) <= sk.backlog {
			conn, err := ep.Accept()
			if err != nil {
				break
			}
			sk.pending = append(sk.pending, conn)
		}
	}
	sk.topUpTokens()
	if len(sk.pending) != n {
		sk.wake()
	}
}

// topUpTokens keeps min(pending, maxTokens) tokens queued to P. sk.mu is held.
func (sk *socket) topUpTokens() {
	var one = [1]byte{'t'}
	for sk.tokens < min(len(sk.pending), maxTokens) {
		if _, err := rawSend(sk.sfd, one[:], unix.MSG_DONTWAIT); err != nil {
			return
		}
		sk.tokens++
	}
}

// takeToken consumes one token through a copy of P. sk.mu is held.
func (sk *socket) takeToken(p *progEnd) {
	if sk.tokens == 0 {
		return
	}
	var b [1]byte
	if n, err := rawRecv(p.fd, b[:]); err == nil && n == 1 {
		sk.tokens--
	}
}

// accept emulates accept(2) and accept4(2).
func (sk *socket) accept(c *call, pc **progEnd, flags int) error {
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return unix.EINVAL
	}
	sk.mu.Lock()
	if sk.state != stListening {
		sk.mu.Unlock()
		return unix.EINVAL
	}
	if len(sk.pending) == 0 {
		sk.mu.Unlock()
		if (*pc).nonblocking() {
			return unix.EAGAIN
		}
		p := *pc
		*pc = nil
		sk.s.goSafe(func() { sk.waitAccept(c, p, flags) })
		return errAnswered
	}
	conn := sk.pop(*pc)
	sk.mu.Unlock()
	return sk.deliver(c, *pc, conn, flags)
}

// pop takes the oldest pending connection and its token. sk.mu is held.
func (sk *socket) pop(p *progEnd) *netstack.TCPEndpoint {
	conn := sk.pending[0]
	sk.pending[0] = nil
	sk.pending = sk.pending[1:]
	sk.takeToken(p)
	sk.fillLocked() // room in the queue: take more from the stack
	return conn
}

// requeue puts back a connection whose delivery failed, first in line: it is never lost.
func (sk *socket) requeue(conn *netstack.TCPEndpoint) {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.state != stListening {
		conn.Abort()
		return
	}
	sk.pending = append([]*netstack.TCPEndpoint{conn}, sk.pending...)
	sk.topUpTokens()
	sk.wake()
}

// waitAccept answers a blocking accept once a connection is pending, or a signal interrupts it,
// or SO_RCVTIMEO passes (EAGAIN).
func (sk *socket) waitAccept(c *call, p *progEnd, flags int) {
	defer p.close()
	sk.mu.Lock()
	deadline := sk.timeout(false)
	for {
		if sk.state != stListening {
			sk.mu.Unlock()
			c.answer(0, unix.EINVAL)
			return
		}
		if len(sk.pending) > 0 {
			conn := sk.pop(p)
			sk.mu.Unlock()
			c.answer(0, sk.deliver(c, p, conn, flags))
			return
		}
		changed := sk.changes()
		sk.mu.Unlock()
		if over, _ := c.endWait(c.block(changed, deadline), unix.EAGAIN); over {
			return
		}
		sk.mu.Lock()
	}
}

// deliver gives conn to the program: the peer's address into accept's buffers, a new
// socketpair end as the return value, the other end spliced to conn.
func (sk *socket) deliver(c *call, p *progEnd, conn *netstack.TCPEndpoint, flags int) error {
	peer, err := conn.RemoteAddr()
	if err != nil {
		// Reset before it was accepted; Linux hands it out anyway and the first read fails.
		peer = sk.peer
	}
	if c.Args[1] != 0 {
		if err := c.writeSockaddr(c.Args[1], c.Args[2], encodeSockaddr(peer, sk.v6)); err != nil {
			sk.requeue(conn)
			return err
		}
	}
	pfd, sfd, err := sk.s.socketpair(unix.SOCK_STREAM | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK)
	if err != nil {
		sk.requeue(conn)
		return err
	}
	defer rawClose(pfd)
	if flags&unix.SOCK_NONBLOCK == 0 {
		_, err = rawFcntl(pfd, unix.F_SETFL, unix.O_RDWR)
	}
	var ino uint64
	if err == nil {
		ino, err = rawInode(pfd)
	}
	if err != nil {
		unix.Close(sfd)
		sk.requeue(conn)
		return err
	}
	// Accepted sockets inherit the listener's options, as Linux clones the listener: those the
	// program set (applied by the stack or only remembered), and P's own.
	sk.mu.Lock()
	opts := maps.Clone(sk.opts)
	sk.mu.Unlock()
	for k, v := range opts {
		conn.SetSockOpt(k.level, k.name, v)
		if onProgEnd(k) {
			rawSetsockopt(pfd, k.level, k.name, v)
		}
	}
	for k, v := range readNativeOpts(p.fd) {
		rawSetsockopt(pfd, k.level, k.name, v)
		conn.SetSockOpt(k.level, k.name, v)
	}
	nsk := &socket{
		s: sk.s, ino: ino, v6: sk.v6, sfd: sfd, state: stConnected, acked: true, connTold: true, bound: true,
		ep: conn, local: conn.LocalAddr(), peer: peer, opts: opts,
	}
	sk.s.register(nsk.ino, nsk)
	nfd, err := sk.s.l.AddFDReturn(c.ID, pfd, flags&unix.SOCK_CLOEXEC != 0)
	if err != nil {
		sk.s.unregister(nsk.ino, nsk)
		unix.Close(sfd)
		sk.requeue(conn)
		if err == notify.ErrGone {
			return errAnswered
		}
		return err
	}
	nsk.mu.Lock()
	nsk.at = progRef{c.Pid, nfd}
	spliced := nsk.startSplice()
	nsk.mu.Unlock()
	if spliced != nil {
		nsk.watchEnd(spliced)
	}
	if sk.s.verbose {
		sk.s.log.Debug("accept", "pid", c.Pid, "fd", c.fd, "peer", peer, "ino", nsk.ino)
	}
	return errAnswered
}

// stopListening closes the listener (shutdown(2) on a listening socket, as Linux does it:
// pending connections are reset and blocked accepts fail with EINVAL). sk.mu is held.
func (sk *socket) stopListening(p *progEnd) {
	if sk.cancelNotify != nil {
		sk.cancelNotify()
		sk.cancelNotify = nil
	}
	for _, conn := range sk.pending {
		conn.Abort()
	}
	sk.pending = nil
	for sk.tokens > 0 {
		before := sk.tokens
		sk.takeToken(p)
		if sk.tokens == before {
			break
		}
	}
	sk.ep.Close()
	sk.ep = nil
	sk.closeOthers()
	sk.bound = false
	sk.bindReq = netip.AddrPort{}
	sk.unindexLoopback()
	sk.setState(stFresh)
}

// unindexLoopback takes a listener out of the loopback index. sk.mu is held.
func (sk *socket) unindexLoopback() {
	if sk.loopback.IsValid() {
		sk.s.loopbacks.remove(false, sk.loopback)
		sk.loopback = netip.AddrPort{}
	}
}
