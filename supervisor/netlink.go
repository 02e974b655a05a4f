package supervisor

import (
	"encoding/binary"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
)

// An rtnetlink socket (socket(AF_NETLINK, …, NETLINK_ROUTE)) is emulated so that programs
// that pick "my address" from their interfaces (getifaddrs, ip addr, hostname -I, Java,
// Node, glibc's AI_ADDRCONFIG) see the virtual networks. The program holds one end (P) of an
// AF_UNIX SOCK_SEQPACKET pair, at a number in the datagram range so that recvmsg and sendmsg
// are trapped (they carry the netlink addresses); the supervisor reads the requests from the
// other end (S). RTM_GETLINK and RTM_GETADDR are answered from the virtual networks (and
// loopback); every other message goes to a kernel netlink socket (K) of the supervisor, whose
// answers and notifications are passed back as they are: other netlink traffic is left
// alone. The program learns K's port id from getsockname, so the kernel's answers carry the
// pid it expects.
//
// Requests that change the host (RTM_NEW*, RTM_DEL*, RTM_SET*) are passed on only when the
// program holds CAP_NET_ADMIN, as the kernel would check: K belongs to the supervisor, which
// must not lend its privileges. Other netlink families are not trapped at all.
type netlinkSock struct {
	s       *Supervisor
	ino     uint64
	typ     int  // SOCK_RAW or SOCK_DGRAM, as the program asked
	admin   bool // the program had CAP_NET_ADMIN when it made the socket
	sfd     *os.File
	src     syscall.RawConn
	kernel  *os.File
	krc     syscall.RawConn
	portid  uint32
	mu      sync.Mutex
	groups  uint32
	closing bool
}

// capNetAdmin is CAP_NET_ADMIN's bit in /proc/<pid>/status CapEff.
const capNetAdmin = 12

// socketNetlink emulates socket(AF_NETLINK, typ, NETLINK_ROUTE).
func (s *Supervisor) socketNetlink(c *call) error {
	typ := int(int32(c.Args[1]))
	if t := typ & sockTypeMask; t != unix.SOCK_RAW && t != unix.SOCK_DGRAM {
		return unix.ESOCKTNOSUPPORT
	}
	k, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		s.noteFDShortage(err)
		return err
	}
	kernel := os.NewFile(uintptr(k), "ztnc-netlink")
	if err := unix.Bind(k, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		kernel.Close()
		return err
	}
	sa, err := unix.Getsockname(k)
	nl, ok := sa.(*unix.SockaddrNetlink)
	if err != nil || !ok {
		kernel.Close()
		return unix.EIO
	}
	p, s1, err := s.socketpair(unix.SOCK_SEQPACKET | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK)
	if err != nil {
		kernel.Close()
		return err
	}
	defer unix.Close(p)
	sfd := os.NewFile(uintptr(s1), "ztnc-netlink-s")
	if typ&unix.SOCK_NONBLOCK == 0 {
		_, err = unix.FcntlInt(uintptr(p), unix.F_SETFL, unix.O_RDWR)
	}
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstat(p, &st)
	}
	// Answers to a dump can be large: room for them in P's receive queue.
	unix.SetsockoptInt(s1, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
	if err != nil {
		sfd.Close()
		kernel.Close()
		return err
	}
	n := &netlinkSock{s: s, ino: st.Ino, typ: typ & sockTypeMask, admin: hasCapability(c.Pid, capNetAdmin),
		sfd: sfd, kernel: kernel, portid: nl.Pid}
	if n.src, err = sfd.SyscallConn(); err == nil {
		n.krc, err = kernel.SyscallConn()
	}
	if err != nil {
		sfd.Close()
		kernel.Close()
		return err
	}
	s.register(n.ino, n)
	s.goSafe(n.fromProgram)
	s.goSafe(n.fromKernel)
	// If nothing is installed, S hangs up when our copy of P closes, and fromProgram releases
	// the socket.
	return c.injectDatagramFD(p, typ&unix.SOCK_CLOEXEC != 0)
}

func (n *netlinkSock) heldPort() uint16 { return 0 }

// release closes the socket once the program's end is gone.
func (n *netlinkSock) release() {
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		return
	}
	n.closing = true
	n.mu.Unlock()
	n.sfd.Close()
	n.kernel.Close()
	n.s.unregister(n.ino, n)
}

// fromProgram reads the program's requests from S until P is closed.
func (n *netlinkSock) fromProgram() {
	defer n.release()
	buf := make([]byte, 1<<16)
	for {
		var m int
		var err error
		rerr := n.src.Read(func(fd uintptr) bool {
			m, err = unix.Read(int(fd), buf)
			return err != unix.EAGAIN
		})
		if rerr != nil || (err != nil && err != unix.EINTR) {
			return
		}
		if err == nil && m == 0 && n.hungUp() {
			return // the program's end is closed
		}
		if err == nil && m > 0 {
			n.request(buf[:m])
		}
	}
}

// hungUp tells an empty message from the end of file: the program's end is gone.
func (n *netlinkSock) hungUp() bool {
	hup := true
	n.src.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		if k, err := unix.Poll(p, 0); err == nil {
			hup = k > 0 && p[0].Revents&(unix.POLLHUP|unix.POLLRDHUP) != 0
		}
	})
	return hup
}

// request handles one datagram the program sent to the kernel.
func (n *netlinkSock) request(b []byte) {
	msgs := parseNetlink(b)
	if len(msgs) == 0 {
		n.s.log.Debug("netlink: malformed request dropped", "ino", n.ino, "len", len(b))
		return
	}
	ifs := n.s.interfaces()
	for _, m := range msgs {
		if reply, ok := answerRoute(m, n.portid, ifs); ok {
			for _, d := range reply {
				n.toProgram(d)
			}
			continue
		}
		if !n.admin && m.typ >= unix.RTM_BASE && m.typ%4 != 2 {
			// Not a RTM_GET*: it changes the host, which the program may not do.
			w := &nlWriter{seq: m.seq, pid: n.portid}
			w.errorMsg(m, unix.EPERM)
			n.toProgram(w.out[0])
			continue
		}
		n.toKernel(m.raw)
	}
}

// toKernel sends a message to the kernel; the errors a kernel socket would report come back
// as netlink errors.
func (n *netlinkSock) toKernel(raw []byte) {
	var err error
	werr := n.krc.Write(func(fd uintptr) bool {
		err = unix.Sendto(int(fd), raw, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return err != unix.EAGAIN
	})
	if werr == nil && err != nil {
		if m := parseNetlink(raw); len(m) == 1 {
			w := &nlWriter{seq: m[0].seq, pid: n.portid}
			w.errorMsg(m[0], err.(unix.Errno))
			n.toProgram(w.out[0])
		}
	}
}

// fromKernel passes the kernel's answers and notifications to the program.
func (n *netlinkSock) fromKernel() {
	buf := make([]byte, 1<<16)
	for {
		var m int
		var err error
		rerr := n.krc.Read(func(fd uintptr) bool {
			m, _, err = unix.Recvfrom(int(fd), buf, 0)
			return err != unix.EAGAIN
		})
		if rerr != nil {
			return
		}
		if err == nil {
			n.toProgram(buf[:m])
		}
		// ENOBUFS (notifications lost): the program would see it on its own socket; it
		// resynchronises with a dump either way.
	}
}

// toProgram queues one datagram for the program, waiting for room (a slow reader holds up
// the kernel socket, as its own receive buffer would).
func (n *netlinkSock) toProgram(d []byte) {
	n.src.Write(func(fd uintptr) bool {
		_, err := unix.Write(int(fd), d)
		return err != unix.EAGAIN
	})
}

// handle answers a call on an emulated netlink socket.
func (n *netlinkSock) handle(c *call, pc **progEnd) (int64, error) {
	switch c.Nr {
	case unix.SYS_BIND:
		return 0, n.bind(c)
	case unix.SYS_CONNECT:
		return 0, nil // the kernel is the only peer
	case unix.SYS_GETSOCKNAME:
		n.mu.Lock()
		sa := nlSockaddr(n.portid, n.groups)
		n.mu.Unlock()
		return 0, c.writeSockaddr(c.Args[1], c.Args[2], sa)
	case unix.SYS_GETPEERNAME:
		return 0, c.writeSockaddr(c.Args[1], c.Args[2], nlSockaddr(0, 0))
	case unix.SYS_GETSOCKOPT:
		return 0, c.getsockopt(n.option)
	case unix.SYS_SETSOCKOPT:
		return 0, n.setsockopt(c, *pc)
	case unix.SYS_SENDTO:
		size := int(min(c.Args[2], maxRW))
		data := make([]byte, min(size, 1<<20))
		if err := c.read(c.Args[1], data); err != nil {
			return 0, err
		}
		return n.send(*pc, data)
	case unix.SYS_SENDMSG:
		m, err := c.readMsghdr(c.Args[1])
		if err != nil {
			return 0, err
		}
		segs, size, err := c.readIovecs(&m)
		if err != nil {
			return 0, err
		}
		data, err := c.gather(segs, min(size, 1<<20), 1<<20)
		if err != nil {
			return 0, err
		}
		return n.send(*pc, data)
	case unix.SYS_RECVFROM:
		return n.recvfrom(c, pc)
	case unix.SYS_RECVMSG:
		return n.recvmsg(c, pc)
	case unix.SYS_LISTEN, unix.SYS_ACCEPT, unix.SYS_ACCEPT4, unix.SYS_SHUTDOWN:
		return 0, unix.EOPNOTSUPP
	}
	// sendmmsg, recvmmsg, FIONREAD: the kernel runs them on P (without addresses).
	return 0, errContinue
}

// onKernel runs f on K (os.File.Fd would make K blocking).
func (n *netlinkSock) onKernel(f func(k int) error) error {
	var err error
	if cerr := n.krc.Control(func(fd uintptr) { err = f(int(fd)) }); cerr != nil {
		return unix.EBADF
	}
	return err
}

// nlSockaddr is a struct sockaddr_nl.
func nlSockaddr(pid, groups uint32) []byte {
	b := make([]byte, unix.SizeofSockaddrNetlink)
	binary.NativeEndian.PutUint16(b[0:], unix.AF_NETLINK)
	binary.NativeEndian.PutUint32(b[4:], pid)
	binary.NativeEndian.PutUint32(b[8:], groups)
	return b
}

// bind takes the multicast groups the program asks for (ip monitor, routing daemons): K
// joins them.
func (n *netlinkSock) bind(c *call) error {
	b, err := c.readSockaddr(c.Args[1], c.Args[2])
	if err != nil {
		return err
	}
	if len(b) < unix.SizeofSockaddrNetlink {
		return unix.EINVAL
	}
	if binary.NativeEndian.Uint16(b[0:]) != unix.AF_NETLINK {
		return unix.EINVAL
	}
	groups := binary.NativeEndian.Uint32(b[8:])
	for g := 1; g <= 32; g++ {
		if groups&(1<<(g-1)) != 0 {
			if err := n.onKernel(func(k int) error {
				return unix.SetsockoptInt(k, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, g)
			}); err != nil {
				return err
			}
		}
	}
	n.mu.Lock()
	n.groups = groups
	n.mu.Unlock()
	return nil
}

// send takes a request written with sendto or sendmsg (to the kernel: the only destination
// the emulation has) and queues it on P, as a native send would.
func (n *netlinkSock) send(p *progEnd, data []byte) (int64, error) {
	var m int
	err := ignoreEINTR(func() (err error) {
		m, err = unix.SendmsgN(p.fd, data, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		return err
	})
	return int64(m), err
}

// recvfrom emulates recvfrom(2) with an address: the kernel is always the source.
func (n *netlinkSock) recvfrom(c *call, pc **progEnd) (int64, error) {
	bufAddr, size, flags := c.Args[1], int(min(c.Args[2], 1<<20)), int(int32(c.Args[3]))
	return c.receiver(pc, blocking(*pc, flags), func(pfd int) (int64, error) {
		data, total, err := readQueued(pfd, size, flags)
		if err != nil {
			return 0, err
		}
		if err := c.write(bufAddr, data); err != nil {
			return 0, err
		}
		if err := c.writeSockaddr(c.Args[4], c.Args[5], nlSockaddr(0, 0)); err != nil {
			return 0, err
		}
		if flags&unix.MSG_TRUNC != 0 {
			return int64(total), nil
		}
		return int64(len(data)), nil
	})
}

// recvmsg emulates recvmsg(2): data, the kernel's address, MSG_TRUNC; no control messages.
func (n *netlinkSock) recvmsg(c *call, pc **progEnd) (int64, error) {
	addr, flags := c.Args[1], int(int32(c.Args[2]))
	return c.receiver(pc, blocking(*pc, flags), func(pfd int) (int64, error) {
		m, err := c.readMsghdr(addr)
		if err != nil {
			return 0, err
		}
		segs, size, err := c.readIovecs(&m)
		if err != nil {
			return 0, err
		}
		data, total, err := readQueued(pfd, min(size, 1<<20), flags)
		if err != nil {
			return 0, err
		}
		if err := c.scatter(segs, data); err != nil {
			return 0, err
		}
		if m.name != 0 {
			sa := nlSockaddr(0, 0)
			if err := c.write(m.name, sa[:min(int(m.namelen), len(sa))]); err != nil {
				return 0, err
			}
			if err := c.writeUint32(addr+msghdrNamelenOff, uint32(len(sa))); err != nil {
				return 0, err
			}
		}
		var outFlags uint32
		if len(data) < total {
			outFlags |= unix.MSG_TRUNC
		}
		var tail [12]byte // msg_controllen = 0, msg_flags
		binary.NativeEndian.PutUint32(tail[8:], outFlags)
		if err := c.write(addr+msghdrControllenOff, tail[:]); err != nil {
			return 0, err
		}
		if flags&unix.MSG_TRUNC != 0 {
			return int64(total), nil
		}
		return int64(len(data)), nil
	})
}

// readQueued takes one datagram from a copy of P without waiting: up to size bytes of it,
// and its full length.
func readQueued(pfd, size, flags int) ([]byte, int, error) {
	buf := make([]byte, size)
	var total int
	err := ignoreEINTR(func() (err error) {
		total, _, _, _, err = unix.Recvmsg(pfd, buf, nil, unix.MSG_DONTWAIT|unix.MSG_TRUNC|(flags&unix.MSG_PEEK))
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return buf[:min(total, size)], total, nil
}

// option answers getsockopt for what identifies the socket; the rest comes from K.
func (n *netlinkSock) option(level, name int) ([]byte, error) {
	switch {
	case level == unix.SOL_SOCKET && name == unix.SO_TYPE:
		return intOpt(n.typ), nil
	case level == unix.SOL_SOCKET && name == unix.SO_DOMAIN:
		return intOpt(unix.AF_NETLINK), nil
	case level == unix.SOL_SOCKET && name == unix.SO_PROTOCOL:
		return intOpt(unix.NETLINK_ROUTE), nil
	}
	var v string
	err := n.onKernel(func(k int) (err error) {
		v, err = unix.GetsockoptString(k, level, name)
		return err
	})
	return []byte(v), err
}

// setsockopt sets options on K (netlink's own: memberships, extended acks, strict checks)
// and the data-path ones (timeouts, buffer sizes) on P too.
func (n *netlinkSock) setsockopt(c *call, p *progEnd) error {
	level, name := int(int32(c.Args[1])), int(int32(c.Args[2]))
	l := int(int32(c.Args[4]))
	if l < 0 {
		return unix.EINVAL
	}
	val := make([]byte, min(l, maxOptLen))
	if err := c.read(c.Args[3], val); err != nil {
		return err
	}
	if level == unix.SOL_SOCKET {
		switch name {
		case unix.SO_RCVTIMEO, unix.SO_RCVTIMEO_NEW, unix.SO_SNDTIMEO, unix.SO_SNDTIMEO_NEW,
			unix.SO_RCVBUF, unix.SO_RCVBUFFORCE:
			unix.SetsockoptString(p.fd, level, name, string(val))
		}
	}
	err := n.onKernel(func(k int) error { return unix.SetsockoptString(k, level, name, string(val)) })
	if err == unix.EPERM && level == unix.SOL_SOCKET {
		return nil // SO_RCVBUFFORCE and the like: the supervisor may lack what the program has
	}
	return err
}

// interfaces returns what rtnetlink dumps show: loopback and each network's interface.
func (s *Supervisor) interfaces() []Interface {
	ifs := []Interface{{Index: 1, Name: "lo", MTU: 65536, Loopback: true, Addrs: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}}}
	var links []Link
	if s.links != nil {
		links = s.links()
	}
	for i, st := range s.stacks {
		l := Link{Name: "ztnc" + itoa(uint32(i)), MTU: 2800}
		if i < len(links) {
			l = links[i]
		}
		ifc := Interface{Index: netstack.LinkIndex + i, Name: l.Name, MAC: st.MAC(), MTU: l.MTU}
		ifc.Addrs = append(ifc.Addrs, st.Addresses()...)
		ifc.Addrs = append(ifc.Addrs, netip.PrefixFrom(st.LinkLocal().WithZone(""), 64))
		ifs = append(ifs, ifc)
	}
	return ifs
}

// Link names a network's interface as the programs see it (ip link, getifaddrs).
type Link struct {
	Name string
	MTU  int
}

// SetLinks gives the interface names and MTUs of the networks, in AddNetwork order (before
// Serve; called for each rtnetlink dump). Without it they are ztnc0, ztnc1, … with MTU 2800.
func (s *Supervisor) SetLinks(links func() []Link) { s.links = links }
