package supervisor

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// Host sockets: where the policy sends a socket to the host's network, the program's fd
// becomes a real kernel socket (see swapFD), made here with what the program asked of the
// emulated one: family, type and protocol, O_NONBLOCK, the options it set, its bind.
//
// In fall-through mode the kernel then runs the program's connect itself (CONTINUE): from
// there on the socket costs nothing. The kernel reads the address again from the program's
// memory, and a racing thread could change it — harmless when any host destination is
// allowed. Under --isolate the decision is a security one, so the supervisor never CONTINUEs
// a call whose destination lies in memory: it connects (and sends, see isolatedCall) on its
// copy of the socket with the address it checked.

// hostSocket makes the host socket that replaces an emulated one. bind is the address the
// program bound (invalid: none): the same address and port on the host when it is a wildcard
// or loopback address; a virtual address has no meaning there (ENETUNREACH).
func hostSocket(v6 bool, typ, proto int, nonblocking bool, opts map[optKey][]byte, bind netip.AddrPort) (int, error) {
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, err
	}
	// Options first: IPV6_V6ONLY and SO_REUSEADDR matter to bind. What the host refuses was
	// accepted from the program earlier and is not worth failing its connect over.
	for k, v := range opts {
		unix.SetsockoptString(fd, k.level, k.name, string(v))
	}
	if bind.IsValid() && (bind.Port() != 0 || !bind.Addr().IsUnspecified()) {
		a := bind.Addr().Unmap()
		if !a.IsUnspecified() && !a.IsLoopback() {
			unix.Close(fd)
			return -1, unix.ENETUNREACH
		}
		if err := unix.Bind(fd, hostSockaddr(bind, v6)); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if nonblocking {
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// hostSockaddr is ap for a socket of family v6 (AF_INET6: IPv4 addresses v4-mapped).
func hostSockaddr(ap netip.AddrPort, v6 bool) unix.Sockaddr {
	if !v6 {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	if z := ap.Addr().Zone(); z != "" {
		sa.ZoneId = atoi(z)
	}
	return sa
}

// connectHost connects host socket h (the supervisor's copy of the program's fd) to ap for
// the trapped call, as the program's connect would: at once when non-blocking (EINPROGRESS),
// else from a goroutine when the handshake ends, a signal interrupts it (ERESTARTSYS) or
// SO_SNDTIMEO passes (EINPROGRESS). The caller closes h when it returns.
func (c *call) connectHost(h int, ap netip.AddrPort, v6 bool) error {
	sa := hostSockaddr(ap, v6)
	fl, err := unix.FcntlInt(uintptr(h), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if fl&unix.O_NONBLOCK != 0 {
		return ignoreEINTR(func() error { return unix.Connect(h, sa) })
	}
	// The handshake must not hold the thread that answers every program: the file is made
	// non-blocking while the supervisor waits (the program, blocked in connect, cannot tell).
	if _, err := unix.FcntlInt(uintptr(h), unix.F_SETFL, fl|unix.O_NONBLOCK); err != nil {
		return err
	}
	restore := func() { unix.FcntlInt(uintptr(h), unix.F_SETFL, fl) }
	err = ignoreEINTR(func() error { return unix.Connect(h, sa) })
	if err != unix.EINPROGRESS && err != unix.EALREADY {
		restore()
		return err
	}
	hd, err := unix.FcntlInt(uintptr(h), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		restore()
		return err
	}
	deadline := sockTimeout(hd, unix.SO_SNDTIMEO)
	c.s.goSafe(func() {
		defer unix.Close(hd)
		werr := c.waitFDEvents(hd, unix.EPOLLOUT, deadline)
		unix.FcntlInt(uintptr(hd), unix.F_SETFL, fl)
		if over, _ := c.endWait(werr, unix.EINPROGRESS); over {
			return
		}
		e, err := unix.GetsockoptInt(hd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			c.answer(0, err)
		} else if e != 0 {
			c.answer(0, unix.Errno(e))
		} else {
			c.answer(0, nil)
		}
	})
	return errAnswered
}

func ignoreEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
