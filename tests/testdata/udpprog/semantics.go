package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// connectBack connects c (a bound UDP socket) to peer.
func connectBack(c *net.UDPConn, peer netip.AddrPort) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	rc.Control(func(fd uintptr) { cerr = unix.Connect(int(fd), sockaddr(peer)) })
	return cerr
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	sa := &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
	if z := ap.Addr().Zone(); z != "" {
		id, _ := strconv.Atoi(z)
		sa.ZoneId = uint32(id)
	}
	return sa
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			a = a.WithZone(strconv.Itoa(int(sa.ZoneId)))
		}
		return netip.AddrPortFrom(a, uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// udpSocket makes a UDP socket bound to bind (port 0: any).
func udpSocket(bind netip.AddrPort, opts ...func(fd int) error) (int, netip.AddrPort) {
	family := unix.AF_INET
	if bind.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	check(err, "socket")
	for _, o := range opts {
		check(o(fd), "option")
	}
	check(unix.Bind(fd, sockaddr(bind)), "bind "+bind.String())
	sa, err := unix.Getsockname(fd)
	check(err, "getsockname")
	return fd, addrPort(sa)
}

type failure string

func check(err error, what string) {
	if err != nil {
		panic(failure(fmt.Sprintf("%s: %v", what, err)))
	}
}

func want(ok bool, format string, args ...any) {
	if !ok {
		panic(failure(fmt.Sprintf(format, args...)))
	}
}

// recvWait receives one datagram, waiting up to 5 s.
func recvWait(fd int, buf []byte, flags int) (int, netip.AddrPort, error) {
	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	n, sa, err := unix.Recvfrom(fd, buf, flags)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return n, addrPort(sa), nil
}

// semantics runs socket-level checks; each prints "ok NAME".
func semantics(a4s, a6s, lls string) (err error) {
	a4, a6 := netip.MustParseAddr(a4s), netip.MustParseAddr(a6s)
	var name string
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s: %s", name, f)
		}
	}()
	run := func(n string, f func()) {
		name = n
		f()
		fmt.Println("ok", n)
	}
	buf := make([]byte, 70000)

	run("boundaries", func() {
		srv, sa := udpSocket(netip.AddrPortFrom(a4, 0))
		cli, _ := udpSocket(netip.AddrPortFrom(a4, 0))
		check(unix.Connect(cli, sockaddr(sa)), "connect")
		for _, size := range []int{1, 0, 1000, 9000, 65000} {
			_, err := unix.Write(cli, bytes.Repeat([]byte{'x'}, size))
			check(err, "write")
		}
		for _, size := range []int{1, 0, 1000, 9000, 65000} {
			n, _, err := recvWait(srv, buf, 0)
			check(err, "recv")
			want(n == size, "got %d bytes, want %d", n, size)
		}
		unix.Close(srv)
		unix.Close(cli)
	})

	run("peek-trunc-dontwait-fionread", func() {
		srv, sa := udpSocket(netip.AddrPortFrom(a4, 0))
		cli, csa := udpSocket(netip.AddrPortFrom(a4, 0))
		_, _, err := unix.Recvfrom(srv, buf, unix.MSG_DONTWAIT)
		want(err == unix.EAGAIN, "empty socket: %v, want EAGAIN", err)
		check(unix.Sendto(cli, []byte("0123456789"), 0, sockaddr(sa)), "sendto")
		n, from, err := recvWait(srv, buf[:4], unix.MSG_PEEK)
		check(err, "peek")
		want(n == 4 && string(buf[:4]) == "0123" && from == csa, "peek: %d %q from %v", n, buf[:n], from)
		v, err := unix.IoctlGetInt(srv, unix.SIOCINQ)
		check(err, "FIONREAD")
		want(v == 10, "FIONREAD %d, want 10", v)
		n, _, err = unix.Recvfrom(srv, buf[:4], unix.MSG_TRUNC)
		check(err, "recvfrom MSG_TRUNC")
		want(n == 10 && string(buf[:4]) == "0123", "MSG_TRUNC: returned %d", n)
		check(unix.Sendto(cli, []byte("abcdef"), 0, sockaddr(sa)), "sendto")
		oob := make([]byte, 64)
		n, _, flags, from2, err := unix.Recvmsg(srv, buf[:3], oob, 0)
		check(err, "recvmsg")
		want(n == 3 && flags&unix.MSG_TRUNC != 0 && addrPort(from2) == csa, "recvmsg truncated: n %d flags %#x from %v", n, flags, from2)
		unix.Close(srv)
		unix.Close(cli)
	})

	run("pktinfo", func() {
		srv, sa := udpSocket(netip.AddrPortFrom(netip.IPv4Unspecified(), 0), func(fd int) error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		})
		cli, _ := udpSocket(netip.AddrPortFrom(a4, 0))
		check(unix.Sendto(cli, []byte("pi"), 0, sockaddr(netip.AddrPortFrom(a4, sa.Port()))), "sendto")
		recvWait(srv, buf, unix.MSG_PEEK)
		oob := make([]byte, 128)
		_, oobn, _, _, err := unix.Recvmsg(srv, buf, oob, 0)
		check(err, "recvmsg")
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		check(err, "parse cmsg")
		want(len(msgs) == 1 && msgs[0].Header.Level == unix.IPPROTO_IP && msgs[0].Header.Type == unix.IP_PKTINFO, "cmsgs %+v", msgs)
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&msgs[0].Data[0]))
		want(netip.AddrFrom4(pi.Addr) == a4 && pi.Ifindex != 0, "in_pktinfo %+v", pi)
		unix.Close(srv)
		unix.Close(cli)

		srv, sa = udpSocket(netip.AddrPortFrom(netip.IPv6Unspecified(), 0), func(fd int) error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		})
		cli, _ = udpSocket(netip.AddrPortFrom(a6, 0))
		check(unix.Sendto(cli, []byte("pi6"), 0, sockaddr(netip.AddrPortFrom(a6, sa.Port()))), "sendto")
		recvWait(srv, buf, unix.MSG_PEEK)
		_, oobn, _, _, err = unix.Recvmsg(srv, buf, oob, 0)
		check(err, "recvmsg")
		msgs, err = unix.ParseSocketControlMessage(oob[:oobn])
		check(err, "parse cmsg")
		want(len(msgs) == 1 && msgs[0].Header.Type == unix.IPV6_PKTINFO, "cmsgs %+v", msgs)
		pi6 := (*unix.Inet6Pktinfo)(unsafe.Pointer(&msgs[0].Data[0]))
		want(netip.AddrFrom16(pi6.Addr) == a6, "in6_pktinfo %+v", pi6)
		unix.Close(srv)
		unix.Close(cli)
	})

	run("mmsg", func() {
		srv, sa := udpSocket(netip.AddrPortFrom(a6, 0))
		cli, csa := udpSocket(netip.AddrPortFrom(a6, 0))
		msgs := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
		n, err := sendmmsg(cli, msgs, sa)
		check(err, "sendmmsg")
		want(n == 3, "sendmmsg sent %d", n)
		recvWait(srv, buf, unix.MSG_PEEK)
		time.Sleep(50 * time.Millisecond)
		got, froms, err := recvmmsg(srv, 8)
		check(err, "recvmmsg")
		want(len(got) == 3 && string(got[0]) == "one" && string(got[2]) == "three" && froms[1] == csa, "recvmmsg %q from %v", got, froms)
		unix.Close(srv)
		unix.Close(cli)
	})

	run("dual-stack", func() {
		// A dual-stack socket sees IPv4 peers v4-mapped and answers them.
		srv, sa := udpSocket(netip.AddrPortFrom(netip.IPv6Unspecified(), 0))
		cli, csa := udpSocket(netip.AddrPortFrom(a4, 0))
		check(unix.Sendto(cli, []byte("v4"), 0, sockaddr(netip.AddrPortFrom(a4, sa.Port()))), "sendto")
		_, from, err := recvWait(srv, buf, 0)
		check(err, "recvfrom")
		want(from.Addr() == netip.AddrFrom16(a4.As16()) && from.Port() == csa.Port(), "from %v, want v4-mapped %v", from, csa)
		check(unix.Sendto(srv, []byte("back"), 0, sockaddr(from)), "sendto v4-mapped")
		_, back, err := recvWait(cli, buf, 0)
		check(err, "recvfrom")
		want(back == netip.AddrPortFrom(a4, sa.Port()), "reply from %v", back)
		// IPV6_V6ONLY: the same port is free for IPv4 only then.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		check(err, "socket")
		err = unix.Bind(fd, sockaddr(netip.AddrPortFrom(netip.IPv4Unspecified(), sa.Port())))
		want(err == unix.EADDRINUSE, "v4 bind on a dual-stack socket's port: %v, want EADDRINUSE", err)
		unix.Close(fd)
		unix.Close(srv)
		only, osa := udpSocket(netip.AddrPortFrom(netip.IPv6Unspecified(), 0), func(fd int) error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		})
		v4, _ := udpSocket(netip.AddrPortFrom(netip.IPv4Unspecified(), osa.Port()))
		check(unix.Sendto(cli, []byte("to-v4"), 0, sockaddr(netip.AddrPortFrom(a4, osa.Port()))), "sendto")
		n, _, err := recvWait(v4, buf, 0)
		check(err, "v4 socket on a V6ONLY socket's port")
		want(string(buf[:n]) == "to-v4", "got %q", buf[:n])
		_, _, err = unix.Recvfrom(only, buf, unix.MSG_DONTWAIT)
		want(err == unix.EAGAIN, "V6ONLY socket got an IPv4 datagram (%v)", err)
		_, err = unix.Write(cli, nil)
		err = unix.Connect(only, sockaddr(netip.AddrPortFrom(netip.AddrFrom16(a4.As16()), 9)))
		want(err != nil, "V6ONLY socket connected to a v4-mapped address")
		unix.Close(only)
		unix.Close(v4)
		unix.Close(cli)
	})

	run("connect-disconnect-refused", func() {
		cli, _ := udpSocket(netip.AddrPortFrom(a4, 0))
		csa := netip.AddrPortFrom(a4, 9) // discard: nobody listens
		check(unix.Connect(cli, sockaddr(csa)), "connect")
		peer, err := unix.Getpeername(cli)
		check(err, "getpeername")
		want(addrPort(peer) == csa, "getpeername %v", addrPort(peer))
		_, err = unix.Write(cli, []byte("knock"))
		check(err, "write")
		// The ICMP port unreachable wakes poll and is the next receive's error.
		p := []unix.PollFd{{Fd: int32(cli), Events: unix.POLLIN}}
		n, err := unix.Poll(p, 5000)
		want(n == 1 && err == nil, "poll after a refused datagram: %d %v", n, err)
		_, _, err = unix.Recvfrom(cli, buf, 0)
		want(err == unix.ECONNREFUSED, "recvfrom: %v, want ECONNREFUSED", err)
		// AF_UNSPEC dissolves the association.
		var unspec [16]byte
		_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(cli), uintptr(unsafe.Pointer(&unspec[0])), 16)
		want(errno == 0, "connect AF_UNSPEC: %v", errno)
		_, err = unix.Getpeername(cli)
		want(err == unix.ENOTCONN, "getpeername after AF_UNSPEC: %v", err)
		unix.Close(cli)
	})

	run("broadcast", func() {
		srv, sa := udpSocket(netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
		cli, _ := udpSocket(netip.AddrPortFrom(a4, 0))
		bcast := netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), sa.Port())
		err := unix.Sendto(cli, []byte("b"), 0, sockaddr(bcast))
		want(err == unix.EACCES, "broadcast without SO_BROADCAST: %v, want EACCES", err)
		check(unix.SetsockoptInt(cli, unix.SOL_SOCKET, unix.SO_BROADCAST, 1), "SO_BROADCAST")
		check(unix.Sendto(cli, []byte("b"), 0, sockaddr(bcast)), "broadcast")
		unix.Close(srv)
		unix.Close(cli)
	})

	run("multicast", func() {
		group := netip.MustParseAddr("239.1.2.3")
		srv, sa := udpSocket(netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
		check(unix.SetsockoptIPMreq(srv, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &unix.IPMreq{Multiaddr: group.As4()}), "join")
		cli, _ := udpSocket(netip.AddrPortFrom(a4, 0))
		check(unix.Sendto(cli, []byte("m"), 0, sockaddr(netip.AddrPortFrom(group, sa.Port()))), "send to group")
		n, _, err := recvWait(srv, buf, 0)
		check(err, "receive from group")
		want(n == 1, "got %d bytes", n)
		unix.Close(srv)
		unix.Close(cli)
	})

	if lls != "" {
		run("link-local", func() {
			ll := netip.MustParseAddr(lls)
			srv, sa := udpSocket(netip.AddrPortFrom(netip.IPv6Unspecified(), 0))
			cli, _ := udpSocket(netip.AddrPortFrom(netip.IPv6Unspecified(), 0))
			check(unix.Sendto(cli, []byte("ll"), 0, sockaddr(netip.AddrPortFrom(ll, sa.Port()))), "sendto link-local")
			_, from, err := recvWait(srv, buf, 0)
			check(err, "recvfrom")
			want(from.Addr().WithZone("") == ll.WithZone("") && from.Addr().Zone() != "", "from %v: want %v with a scope id", from, ll)
			unix.Close(srv)
			unix.Close(cli)
		})
	}

	run("dup-out-of-range", func() {
		srv, sa := udpSocket(netip.AddrPortFrom(a4, 0))
		cli, csa := udpSocket(netip.AddrPortFrom(a4, 0))
		check(unix.Dup2(srv, 100), "dup2")
		check(unix.Sendto(cli, []byte("dup"), 0, sockaddr(sa)), "sendto")
		n, from, err := recvWait(100, buf, 0)
		check(err, "recvfrom on the dup")
		want(string(buf[:n]) == "dup" && from == csa, "got %q from %v", buf[:n], from)
		unix.Close(100)
		unix.Close(srv)
		unix.Close(cli)
	})

	run("rebind", func() {
		// A port is free again as soon as its socket is closed.
		fd, sa := udpSocket(netip.AddrPortFrom(a4, 0))
		for range 50 {
			unix.Close(fd)
			fd, _ = udpSocket(sa)
		}
		unix.Close(fd)
	})

	run("reuseaddr", func() {
		reuse := func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) }
		a, sa := udpSocket(netip.AddrPortFrom(netip.IPv4Unspecified(), 0), reuse)
		b, _ := udpSocket(sa, reuse)
		unix.Close(a)
		unix.Close(b)
	})

	run("timeout", func() {
		srv, _ := udpSocket(netip.AddrPortFrom(a4, 0))
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		check(unix.SetsockoptTimeval(srv, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv), "SO_RCVTIMEO")
		start := time.Now()
		_, _, err := unix.Recvfrom(srv, buf, 0)
		want(err == unix.EAGAIN && time.Since(start) >= 90*time.Millisecond, "blocking recvfrom: %v after %v", err, time.Since(start))
		unix.Close(srv)
	})

	run("raw-protocols", func() {
		_, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_UDP)
		want(err == unix.EPROTONOSUPPORT || err == unix.EPERM, "raw UDP socket: %v", err)
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
		check(err, "ping socket")
		unix.Close(fd)
	})
	return nil
}

type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func sendmmsg(fd int, msgs [][]byte, to netip.AddrPort) (int, error) {
	sa := sockaddrBytes(to)
	hs := make([]mmsghdr, len(msgs))
	iovs := make([]unix.Iovec, len(msgs))
	for i, m := range msgs {
		iovs[i].Base = &m[0]
		iovs[i].SetLen(len(m))
		hs[i].hdr.Name = &sa[0]
		hs[i].hdr.Namelen = uint32(len(sa))
		hs[i].hdr.Iov = &iovs[i]
		hs[i].hdr.SetIovlen(1)
	}
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hs[0])), uintptr(len(hs)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func recvmmsg(fd, vlen int) ([][]byte, []netip.AddrPort, error) {
	hs := make([]mmsghdr, vlen)
	bufs := make([][]byte, vlen)
	names := make([][28]byte, vlen)
	iovs := make([]unix.Iovec, vlen)
	for i := range hs {
		bufs[i] = make([]byte, 100)
		iovs[i].Base = &bufs[i][0]
		iovs[i].SetLen(100)
		hs[i].hdr.Name = &names[i][0]
		hs[i].hdr.Namelen = 28
		hs[i].hdr.Iov = &iovs[i]
		hs[i].hdr.SetIovlen(1)
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hs[0])), uintptr(vlen), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return nil, nil, e
	}
	var out [][]byte
	var froms []netip.AddrPort
	for i := range int(n) {
		out = append(out, bufs[i][:hs[i].len])
		froms = append(froms, decodeName(names[i][:hs[i].hdr.Namelen]))
	}
	return out, froms, nil
}

func sockaddrBytes(ap netip.AddrPort) []byte {
	if ap.Addr().Is4() {
		b := make([]byte, 16)
		binary.NativeEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], ap.Port())
		a := ap.Addr().As4()
		copy(b[4:], a[:])
		return b
	}
	b := make([]byte, 28)
	binary.NativeEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], ap.Port())
	a := ap.Addr().As16()
	copy(b[8:], a[:])
	return b
}

func decodeName(b []byte) netip.AddrPort {
	if len(b) < 16 {
		return netip.AddrPort{}
	}
	port := binary.BigEndian.Uint16(b[2:])
	if binary.NativeEndian.Uint16(b) == unix.AF_INET {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	}
	if len(b) < 24 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), port)
}
