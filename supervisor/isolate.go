package supervisor

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Under --isolate the programs can still hold host sockets: those the supervisor swapped in
// for a hole (--allow-host), and any they inherited. Whatever names a destination on them is
// checked: connect, sendto with an address, and sendmsg/sendmmsg (trapped for every fd under
// isolation, since msg_name lies in memory). The supervisor makes the call itself on its copy
// of the socket, with the destination it read and checked, and never lets the kernel run it
// from the program's memory (a racing thread could change the address in between). On stream
// sockets the kernel ignores send addresses (except MSG_FASTOPEN, a connect in disguise,
// refused): those calls run as they are.

// isolatedCall handles a destination-carrying call on a socket the supervisor does not
// emulate, under isolation.
func (s *Supervisor) isolatedCall(c *call) (int64, error) {
	switch c.Nr {
	case unix.SYS_CONNECT, unix.SYS_SENDTO, unix.SYS_SENDMSG, unix.SYS_SENDMMSG:
	default:
		return 0, errContinue
	}
	h, err := s.tasks.GetFD(c.Pid, c.fd)
	if err != nil {
		return 0, errContinue // the kernel reports EBADF
	}
	defer unix.Close(h)
	domain, err := unix.GetsockoptInt(h, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || (domain != unix.AF_INET && domain != unix.AF_INET6) {
		return 0, errContinue // not a socket (ENOTSOCK from the kernel), AF_UNIX, netlink...
	}
	typ, err := unix.GetsockoptInt(h, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return 0, err
	}
	if !s.l.Valid(c.ID) {
		return 0, errAnswered
	}
	v6 := domain == unix.AF_INET6
	stream := typ == unix.SOCK_STREAM
	switch c.Nr {
	case unix.SYS_CONNECT:
		b, err := c.readSockaddr(c.Args[1], c.Args[2])
		if err != nil {
			return 0, err
		}
		ap, unspec, err := decodeSockaddr(b, v6)
		if err != nil {
			return 0, err
		}
		if unspec {
			return 0, connectUnspec(h)
		}
		if err := s.checkHost(!stream, ap); err != nil {
			return 0, err
		}
		return 0, c.connectHost(h, ap, v6)
	case unix.SYS_SENDTO:
		if stream {
			return 0, streamSend(c)
		}
		return s.isolatedSendto(c, h, v6)
	case unix.SYS_SENDMSG:
		if stream {
			return 0, streamSend(c)
		}
		return s.isolatedSendmsg(c, h, v6, c.Args[1], int(int32(c.Args[2])))
	default: // SENDMMSG
		flags := int(int32(c.Args[3]))
		if stream {
			return 0, streamSend(c)
		}
		return c.sendEach(func(hdr uint64) (int64, error) { return s.isolatedSendmsg(c, h, v6, hdr, flags) })
	}
}

// streamSend lets a send on a stream socket (host or emulated) run, unless it is a TCP Fast
// Open connect: refused as on a host with Fast Open off, and programs connect first instead.
// On an emulated socket the kernel would run it on the socketpair end, which takes no address
// (EISCONN), and the program's connection would never be made.
func streamSend(c *call) error {
	if sendFlags(c)&unix.MSG_FASTOPEN != 0 {
		return unix.EOPNOTSUPP
	}
	return errContinue
}

// sendFlags is the flags argument of a trapped sendto, sendmsg or sendmmsg.
func sendFlags(c *call) int {
	if c.Nr == unix.SYS_SENDMSG {
		return int(int32(c.Args[2]))
	}
	return int(int32(c.Args[3]))
}

// checkHost says whether a host socket may send to ap: only where the policy lets host
// traffic go. A virtual destination is not reachable from a host socket either: the host
// would route it to its own network.
func (s *Supervisor) checkHost(udp bool, ap netip.AddrPort) error {
	if kind, _ := s.route(udp, ap); kind != toHost {
		return unix.ENETUNREACH
	}
	return nil
}

// connectUnspec dissolves a datagram socket's association (connect with AF_UNSPEC).
func connectUnspec(h int) error {
	var sa [16]byte // sa_family AF_UNSPEC
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(h), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	if e != 0 {
		return e
	}
	return nil
}

// isolatedSendto sends one datagram with sendto's arguments, after checking its destination.
func (s *Supervisor) isolatedSendto(c *call, h int, v6 bool) (int64, error) {
	size, flags := int(min(c.Args[2], maxRW)), int(int32(c.Args[3]))
	b, err := c.readSockaddr(c.Args[4], c.Args[5])
	if err != nil {
		return 0, err
	}
	ap, unspec, err := decodeSockaddr(b, v6)
	if err != nil {
		return 0, err
	}
	var to unix.Sockaddr
	if !unspec {
		if err := s.checkHost(true, ap); err != nil {
			return 0, err
		}
		to = hostSockaddr(ap, v6)
	}
	if size > maxDgram {
		return 0, unix.EMSGSIZE
	}
	data := make([]byte, size)
	if err := c.read(c.Args[1], data); err != nil {
		return 0, err
	}
	return hostSendFlags(h, data, nil, to, flags)
}

// isolatedSendmsg sends the struct msghdr at addr, after checking its destination. Without
// one it goes to the connected peer, which was checked when it was connected.
func (s *Supervisor) isolatedSendmsg(c *call, h int, v6 bool, addr uint64, flags int) (int64, error) {
	m, err := c.readMsghdr(addr)
	if err != nil {
		return 0, err
	}
	var to unix.Sockaddr
	name, err := c.readName(&m)
	if err != nil {
		return 0, err
	}
	if name != nil {
		ap, unspec, err := decodeSockaddr(name, v6)
		if err != nil {
			return 0, err
		}
		if !unspec {
			if err := s.checkHost(true, ap); err != nil {
				return 0, err
			}
			to = hostSockaddr(ap, v6)
		}
	}
	oob, err := c.readControl(&m)
	if err != nil {
		return 0, err
	}
	data, err := c.readDatagram(&m)
	if err != nil {
		return 0, err
	}
	return hostSendFlags(h, data, oob, to, flags)
}

// hostSendFlags sends a datagram on the supervisor's copy of a host socket, blocking or not
// as the socket's own flags say (see hostSend).
func hostSendFlags(h int, data, oob []byte, to unix.Sockaddr, flags int) (int64, error) {
	blocking := false
	if fl, err := unix.FcntlInt(uintptr(h), unix.F_GETFL, 0); err == nil && fl&unix.O_NONBLOCK == 0 {
		blocking = flags&unix.MSG_DONTWAIT == 0
	}
	return hostSend(h, data, oob, to, flags, blocking)
}

// hostSend sends a datagram on a host socket. It never waits: a blocking program's datagram
// that finds the send buffer full is reported as ENOBUFS, which Linux's UDP also returns
// under memory pressure.
func hostSend(h int, data, oob []byte, to unix.Sockaddr, flags int, blockingSock bool) (int64, error) {
	var n int
	err := ignoreEINTR(func() (err error) {
		n, err = unix.SendmsgN(h, data, oob, to, flags|unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		return err
	})
	if err == unix.EAGAIN && blockingSock {
		err = unix.ENOBUFS
	}
	return int64(n), err
}
