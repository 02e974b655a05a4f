package supervisor

import (
	"maps"
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/notify"
)

// Linux TCP states the endpoint reports (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpCloseWait   = 8
)

// connect emulates connect(2). A non-blocking connect answers EINPROGRESS at once; P opens
// (EPOLLOUT) when the handshake ends, and SO_ERROR tells how. A blocking connect is answered
// from a goroutine when the handshake ends. A restarted call (a signal interrupted a blocking
// connect, or the answer to a non-blocking one was lost) finds the connect in progress and
// carries on, as Linux does.
func (sk *socket) connect(c *call, pc **progEnd) error {
	b, err := c.readSockaddr(c.Args[1], c.Args[2])
	if err != nil {
		return err
	}
	ap, unspec, err := decodeSockaddr(b, sk.v6)
	if err != nil {
		return err
	}
	ap, redirected := sk.s.redirectOut(false, ap)
	nonblocking := (*pc).nonblocking()
	kind, st := toStack, sk.s.stack
	if !redirected && !unspec {
		kind, st = sk.s.route(false, ap)
	}

	sk.mu.Lock()
	switch sk.state {
	case stConnecting:
		if nonblocking && sk.acked {
			sk.mu.Unlock()
			return unix.EALREADY
		}
		if nonblocking {
			sk.mu.Unlock()
			return sk.answerInProgress(c)
		}
		sk.mu.Unlock()
		sk.s.goSafe(func() { sk.waitConnect(c, unix.EALREADY) })
		return errAnswered
	case stConnected, stEnded:
		told := sk.connTold
		sk.connTold = true
		sk.mu.Unlock()
		if !told {
			// As on Linux, the first connect after the connection is made succeeds: the
			// call that started it never learned the outcome (EINPROGRESS, EINTR).
			return nil
		}
		return unix.EISCONN
	case stListening:
		sk.mu.Unlock()
		return unix.EISCONN
	case stFailed:
		e := sk.soErr
		sk.soErr = 0
		sk.acked = true
		sk.mu.Unlock()
		if e != 0 {
			return e // the pending error first, as Linux reports it
		}
		switch kind {
		case toHost:
			return sk.toHost(c, *pc, ap)
		case unreachable:
			return unix.ENETUNREACH
		}
		return sk.reconnect(c, *pc, ap, st, unspec, nonblocking)
	case stClosed:
		sk.mu.Unlock()
		return unix.EBADF
	}
	if unspec {
		sk.mu.Unlock()
		return nil // AF_UNSPEC on an unconnected socket: nothing to dissolve
	}
	switch kind {
	case toHost:
		sk.mu.Unlock()
		return sk.toHost(c, *pc, ap)
	case unreachable:
		sk.mu.Unlock()
		return unix.ENETUNREACH
	}
	if err := sk.startConnect(ap, st, pc, progRef{c.Pid, c.fd}); err != nil {
		sk.mu.Unlock()
		return err
	}
	sk.mu.Unlock()
	if nonblocking {
		return sk.answerInProgress(c)
	}
	sk.s.goSafe(func() { sk.waitConnect(c, unix.EINPROGRESS) })
	return errAnswered
}

// reconnect starts a new attempt on a socket whose last connect failed, as Linux allows. The
// spent socketpair cannot carry it: a fresh one replaces it at the same fd number (ADDFD with
// SETFD, close-on-exec as before). Epoll registrations of the old file do not carry over, and
// other fds the program holds for the old socket keep the failed one.
func (sk *socket) reconnect(c *call, old *progEnd, ap netip.AddrPort, st *netstack.Stack, unspec, nonblocking bool) error {
	if unspec {
		return nil
	}
	cloexec, err := fdCloexec(c.Pid, c.fd)
	if err != nil {
		return unix.EBADF
	}
	nsk, p, err := sk.s.newSocket(sk.v6, nonblocking)
	if err != nil {
		return err
	}
	defer unix.Close(p)
	copyNativeOpts(old.fd, p)
	sk.mu.Lock()
	nsk.opts = maps.Clone(sk.opts)
	nsk.bindReq = sk.bindReq
	sk.mu.Unlock()
	if err := sk.s.l.AddFDAt(c.ID, p, c.fd, cloexec); err != nil {
		if err == notify.ErrGone {
			return errAnswered
		}
		return err
	}
	held, err := unix.Dup(p)
	if err != nil {
		return err
	}
	pc := &progEnd{fd: held}
	nsk.mu.Lock()
	err = nsk.startConnect(ap, st, &pc, progRef{c.Pid, c.fd})
	nsk.mu.Unlock()
	pc.close() // still ours if the connect did not start
	if err != nil {
		return err
	}
	if nonblocking {
		return nsk.answerInProgress(c)
	}
	sk.s.goSafe(func() { nsk.waitConnect(c, unix.EINPROGRESS) })
	return errAnswered
}

// fdCloexec reads whether fd of thread tid is close-on-exec (flags in /proc/<tid>/fdinfo/<fd>).
func fdCloexec(tid uint32, fd int) (bool, error) {
	var buf [256]byte
	b, err := readProc(procPath(tid, "fdinfo/"+strconv.Itoa(fd)), buf[:])
	if err != nil {
		return false, err
	}
	v, ok := fdinfoField(b, "flags")
	if !ok {
		return false, unix.EINVAL
	}
	flags, err := strconv.ParseUint(string(v), 8, 64)
	return flags&unix.O_CLOEXEC != 0, err
}

// startConnect starts the handshake on stack st, keeping the copy of P to open it when done;
// at is where the program called connect. sk.mu is held.
func (sk *socket) startConnect(ap netip.AddrPort, st *netstack.Stack, pc **progEnd, at progRef) error {
	if err := sk.endpointOn(st); err != nil {
		return err
	}
	switch err := sk.ep.Connect(ap); err {
	case nil, unix.EINPROGRESS:
	default:
		// Refused before any packet left (no route, bad address): the endpoint is spent,
		// the socket is not.
		sk.ep.Close()
		sk.ep = nil
		return err
	}
	sk.state = stConnecting
	sk.acked = false
	sk.held, *pc = *pc, nil
	sk.at = at
	events := netstack.EventOut | netstack.EventErr | netstack.EventHUp
	sk.cancelNotify = sk.ep.Notify(events, func(netstack.Events) { sk.s.goPooled(sk.connectDone) })
	if sk.ep.Readiness(events) != 0 {
		sk.s.goPooled(sk.connectDone)
	}
	return nil
}

// answerInProgress tells a non-blocking connect EINPROGRESS and records that it was told.
func (sk *socket) answerInProgress(c *call) error {
	if err := c.answer(0, unix.EINPROGRESS); err != nil {
		return errAnswered
	}
	sk.mu.Lock()
	sk.acked = true
	sk.mu.Unlock()
	return errAnswered
}

// waitConnect answers a blocking connect when its handshake ends, when a signal interrupts it,
// or when SO_SNDTIMEO passes: with timedOut, as Linux (EINPROGRESS for the call that started
// the handshake, EALREADY for a later one).
func (sk *socket) waitConnect(c *call, timedOut unix.Errno) {
	sk.mu.Lock()
	deadline := sk.timeout(true)
	for {
		switch sk.state {
		case stConnected, stEnded:
			sk.connTold = true
			sk.mu.Unlock()
			if c.answer(0, nil) != nil {
				sk.mu.Lock()
				sk.connTold = false // the restarted call reports it
				sk.mu.Unlock()
			}
			return
		case stFailed:
			e := sk.soErr
			sk.soErr = 0
			sk.mu.Unlock()
			if e == 0 {
				e = unix.ECONNABORTED
			}
			if c.answer(0, e) == nil {
				sk.setAcked()
			} else {
				sk.mu.Lock()
				sk.soErr = e // the restarted call reports it
				sk.mu.Unlock()
			}
			return
		case stConnecting:
		default:
			sk.mu.Unlock()
			c.answer(0, unix.EBADF)
			return
		}
		changed := sk.changes()
		sk.mu.Unlock()
		if over, told := c.endWait(c.block(changed, deadline), timedOut); over {
			if told {
				sk.setAcked()
			}
			return
		}
		sk.mu.Lock()
	}
}

func (sk *socket) setAcked() {
	sk.mu.Lock()
	sk.acked = true
	sk.mu.Unlock()
}

// connectDone runs on a pooled goroutine when the connecting endpoint reports an event: it
// opens P and either splices the connection or records the error for SO_ERROR.
func (sk *socket) connectDone() {
	sk.mu.Lock()
	spliced := sk.connectDoneLocked()
	sk.mu.Unlock()
	if spliced != nil {
		sk.watchEnd(spliced)
	}
}

// connectDoneLocked does connectDone's work under sk.mu and returns the endpoint it spliced,
// if it did.
func (sk *socket) connectDoneLocked() (spliced *netstack.TCPEndpoint) {
	if sk.state != stConnecting {
		return nil
	}
	switch st := sk.ep.State(); st {
	case tcpSynSent:
		return nil // not yet
	case tcpEstablished, tcpCloseWait:
		sk.cancelNotify()
		sk.cancelNotify = nil
		sk.local = sk.ep.LocalAddr()
		sk.peer, _ = sk.ep.RemoteAddr()
		sk.peer = sk.s.redirectIn(false, sk.peer)
		for k, v := range readNativeOpts(sk.held.fd) {
			sk.ep.SetSockOpt(k.level, k.name, v)
		}
		if err := sk.openProgEnd(sk.held.fd); err != nil {
			sk.s.log.Warn("open socket", "ino", sk.ino, "err", err)
		}
		sk.held.close()
		sk.held = nil
		sk.s.hup.unwatch(sk) // the splice owns S now (accepted sockets are never watched)
		spliced = sk.startSplice()
		sk.setState(stConnected)
	default:
		sk.cancelNotify()
		sk.cancelNotify = nil
		e := sk.ep.SoError()
		if e == 0 {
			e = unix.ECONNREFUSED
		}
		sk.soErr = e
		sk.ep.Close()
		sk.ep = nil
		// P becomes writable (select and poll callers wake) and reads end of file.
		sk.openProgEnd(sk.held.fd)
		sk.held.close()
		sk.held = nil
		unix.Shutdown(sk.sfd, unix.SHUT_WR)
		sk.setState(stFailed)
	}
	return spliced
}

// toHost moves the socket to the host's network for a connect to ap there: a host socket
// takes its fd number (see swapFD, hostSocket), and the kernel connects it — with the
// program's own call in fall-through mode, with the checked address under isolation.
func (sk *socket) toHost(c *call, p *progEnd, ap netip.AddrPort) error {
	sk.mu.Lock()
	opts, bind := maps.Clone(sk.opts), sk.bindReq
	sk.mu.Unlock()
	opts = withNativeOpts(opts, p.fd)
	h, err := hostSocket(sk.v6, unix.SOCK_STREAM, 0, p.nonblocking(), opts, bind)
	if err != nil {
		return err
	}
	defer unix.Close(h)
	if err := c.swapFD(h, sk.ino); err != nil {
		return err
	}
	if sk.s.verbose {
		sk.s.log.Debug("to host", "pid", c.Pid, "fd", c.fd, "ino", sk.ino, "dst", ap)
	}
	if !sk.s.policy.Isolate {
		return errContinue
	}
	return c.connectHost(h, ap, sk.v6)
}

// startSplice hands S and the established endpoint to the stack's proxy, and returns the
// endpoint (nil if the splice failed), whose end the caller then watches (watchEnd) once sk.mu
// is released. sk.mu is held.
func (sk *socket) startSplice() *netstack.TCPEndpoint {
	f := os.NewFile(uintptr(sk.sfd), "ztnc-splice")
	sk.sfd = -1
	ep := sk.ep
	ep.SetProgramEnd(sk)
	if err := ep.Splice(f); err != nil {
		sk.s.log.Warn("splice", "ino", sk.ino, "err", err)
		sk.s.stats.spliceFails.Add(1)
		ep.Abort()
		sk.s.goSafe(sk.release)
		return nil
	}
	sk.s.stats.connections.Add(1)
	sk.s.stats.active.Add(1)
	return ep
}

// watchEnd marks the socket ended when its spliced connection ends, and hands it to the
// hang-up sweep. It runs on the goroutine that releases the connection (no goroutine waits
// per connection), or at once if the connection has already ended: sk.mu must not be held.
func (sk *socket) watchEnd(ep *netstack.TCPEndpoint) {
	ep.OnDone(func() {
		sk.s.guard(func() {
			sk.s.stats.active.Add(-1)
			sk.mu.Lock()
			if sk.state == stConnected {
				sk.setState(stEnded)
			}
			sk.mu.Unlock()
			sk.s.hup.ended(sk)
		})
	})
}
