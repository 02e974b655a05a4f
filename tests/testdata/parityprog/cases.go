package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cases run in this order; each uses ports of its own, so that none waits for another's
// TIME-WAIT. The ports are below 16000, outside the ephemeral ranges of Linux (32768-60999)
// and gVisor (16000-65535): an earlier case's connect could otherwise have taken one as its
// local port, still in TIME-WAIT, and a later bind failed (EADDRINUSE) now and then.
var cases = []testCase{
	{"socket-args", func(p *probe) {
		_, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP)
		p.say("stream with IPPROTO_UDP: %s", errno(err))
		_, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_TCP)
		p.say("dgram with IPPROTO_TCP: %s", errno(err))
		for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM} {
			fd := sock(unix.AF_INET6, typ)
			p.say("type %d: SO_TYPE %s SO_DOMAIN %s SO_PROTOCOL %s SO_ACCEPTCONN %s V6ONLY %s", typ,
				getInt(fd, unix.SOL_SOCKET, unix.SO_TYPE), getInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN),
				getInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL), getInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN),
				getInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY))
			unix.Close(fd)
		}
	}},
	{"tcp-unconnected", func(p *probe) {
		fd := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(fd)
		p.say("getsockname %s", sockname(fd, false))
		p.say("getpeername %s", peername(fd, false))
		p.say("shutdown %s", errno(unix.Shutdown(fd, unix.SHUT_RDWR)))
		// Without MSG_DONTWAIT the two would block under ztnc-run (see the test's exceptions).
		p.say("send %s", errno(unix.Sendto(fd, []byte("x"), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil)))
		p.say("recv %s", recvStr(fd, 4, unix.MSG_DONTWAIT))
		_, _, err := unix.Accept(fd)
		p.say("accept %s", errno(err))
		p.say("SO_ERROR %s", getInt(fd, unix.SOL_SOCKET, unix.SO_ERROR))
		p.say("poll %s", pollOne(fd, unix.POLLIN|unix.POLLOUT, 0))
	}},
	{"tcp-bind", func(p *probe) {
		fd := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(fd)
		p.say("bind foreign address %s", errno(unix.Bind(fd, sa(ap("192.0.2.99:11001")))))
		p.say("bind v6 to v4 socket %s", errno(unix.Bind(fd, sa(ap("[2001:db8:198::1]:11001")))))
		p.say("bind own %s", errno(unix.Bind(fd, sa(ap("198.51.100.1:0")))))
		p.say("getsockname %s", sockname(fd, false))
		p.say("bind again %s", errno(unix.Bind(fd, sa(ap("198.51.100.1:11002")))))
		l := listener(unix.AF_INET, ap("198.51.100.1:11003"))
		defer unix.Close(l)
		for _, at := range []string{"198.51.100.1:11003", "0.0.0.0:11003", "127.0.0.1:11003"} {
			f := sock(unix.AF_INET, unix.SOCK_STREAM)
			p.say("bind %s while listening there %s", at, errno(unix.Bind(f, sa(ap(at)))))
			unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			p.say("bind %s with SO_REUSEADDR on both %s", at, errno(unix.Bind(f, sa(ap(at)))))
			unix.Close(f)
		}
		p.say("listener SO_ACCEPTCONN %s", getInt(l, unix.SOL_SOCKET, unix.SO_ACCEPTCONN))
		p.say("listener getpeername %s", peername(l, true))
		p.say("listener connect %s", errno(unix.Connect(l, sa(ap("198.51.100.1:11003")))))
		p.say("listener send %s", errno(unix.Sendto(l, []byte("x"), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil)))
		p.say("listener listen again %s", errno(unix.Listen(l, 4)))
	}},
	{"tcp-bind-args", func(p *probe) {
		fd := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(fd)
		in := unix.RawSockaddrInet4{Family: unix.AF_INET}
		p.say("short addrlen %s", rawSyscall(unix.SYS_BIND, uintptr(fd), ptr(&in), 8))
		p.say("bad pointer %s", rawSyscall(unix.SYS_BIND, uintptr(fd), 8, unix.SizeofSockaddrInet4))
		bad := unix.RawSockaddrInet4{Family: unix.AF_INET6}
		p.say("wrong family %s", rawSyscall(unix.SYS_BIND, uintptr(fd), ptr(&bad), unix.SizeofSockaddrInet4))
		unspec := unix.RawSockaddrInet4{Family: unix.AF_UNSPEC}
		p.say("AF_UNSPEC any %s", rawSyscall(unix.SYS_BIND, uintptr(fd), ptr(&unspec), unix.SizeofSockaddrInet4))
		p.say("getsockname %s", sockname(fd, false))
		var out unix.RawSockaddrInet4
		l := uint32(2)
		p.say("getsockname short buffer %s len %d", rawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), ptr(&out), ptr(&l)), l)
		p.say("getsockname bad len pointer %s", rawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), ptr(&out), 8))
		neg := int32(-1)
		p.say("getsockname negative len %s", rawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), ptr(&out), ptr(&neg)))
		p.say("connect bad pointer %s", rawSyscall(unix.SYS_CONNECT, uintptr(fd), 8, unix.SizeofSockaddrInet4))
	}},
	{"tcp-close-rebind", func(p *probe) {
		// A port is free again as soon as close returns: programs probe for a free port this way.
		for i := 0; i < 3; i++ {
			fd := sock(unix.AF_INET, unix.SOCK_STREAM)
			err := unix.Bind(fd, sa(ap("198.51.100.1:11005")))
			unix.Close(fd)
			p.say("bound socket %d: bind %s", i, errno(err))
		}
		for i := 0; i < 3; i++ {
			l := sock(unix.AF_INET, unix.SOCK_STREAM)
			err := unix.Bind(l, sa(ap("0.0.0.0:11006")))
			if err == nil {
				err = unix.Listen(l, 1)
			}
			unix.Close(l)
			p.say("listener %d: %s", i, errno(err))
		}
		u := sock(unix.AF_INET, unix.SOCK_DGRAM)
		err := unix.Bind(u, sa(ap("198.51.100.1:11007")))
		unix.Close(u)
		u = sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(u)
		p.say("udp: bind %s, again after close %s", errno(err), errno(unix.Bind(u, sa(ap("198.51.100.1:11007")))))
	}},
	{"tcp-connect", func(p *probe) {
		c, s := connected(unix.AF_INET, ap("198.51.100.1:11010"))
		defer unix.Close(c)
		defer unix.Close(s)
		p.say("client name %s peer %s", sockname(c, false), peername(c, true))
		p.say("server name %s peer %s", sockname(s, true), peername(s, false))
		p.say("connect again %s", errno(unix.Connect(c, sa(ap("198.51.100.1:11010")))))
		p.say("listen on connected %s", errno(unix.Listen(c, 4)))
		p.say("bind connected %s", errno(unix.Bind(c, sa(ap("198.51.100.1:0")))))
		p.say("SO_ACCEPTCONN %s", getInt(s, unix.SOL_SOCKET, unix.SO_ACCEPTCONN))
		p.say("poll empty %s", pollOne(c, unix.POLLIN|unix.POLLOUT, 0))
		p.say("recv empty %s", recvStr(c, 4, unix.MSG_DONTWAIT))
		unix.Write(s, []byte("hello"))
		p.say("poll data %s", pollOne(c, unix.POLLIN, 2000))
		n, err := unix.IoctlGetInt(c, unix.SIOCINQ)
		p.say("FIONREAD %d %s", n, errno(err))
		p.say("peek %s", recvStr(c, 3, unix.MSG_PEEK))
		p.say("recv %s", recvStr(c, 3, 0))
		p.say("recv rest %s", recvStr(c, 10, 0))
		unix.Write(s, []byte("abc"))
		go func() { time.Sleep(100 * time.Millisecond); unix.Write(s, []byte("def")) }()
		p.say("waitall %s", recvStr(c, 6, unix.MSG_WAITALL))
	}},
	{"tcp-refused", func(p *probe) {
		fd := sock(unix.AF_INET, unix.SOCK_STREAM)
		p.say("blocking %s", errno(unix.Connect(fd, sa(ap("198.51.100.1:11020")))))
		p.say("after: SO_ERROR %s getpeername %s", getInt(fd, unix.SOL_SOCKET, unix.SO_ERROR), peername(fd, true))
		unix.Close(fd)
		fd = sock(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK)
		defer unix.Close(fd)
		p.say("non-blocking %s", errno(unix.Connect(fd, sa(ap("198.51.100.1:11020")))))
		p.say("poll %s", pollOne(fd, unix.POLLOUT, 2000))
		p.say("SO_ERROR %s, again %s", getInt(fd, unix.SOL_SOCKET, unix.SO_ERROR), getInt(fd, unix.SOL_SOCKET, unix.SO_ERROR))
		p.str("loopback", func() string {
			f := sock(unix.AF_INET, unix.SOCK_STREAM)
			defer unix.Close(f)
			return errno(unix.Connect(f, sa(ap("127.0.0.1:11020"))))
		})
		p.str("v6", func() string {
			f := sock(unix.AF_INET6, unix.SOCK_STREAM)
			defer unix.Close(f)
			return errno(unix.Connect(f, sa(ap("[2001:db8:198::1]:11020"))))
		})
	}},
	{"tcp-nonblocking-connect", func(p *probe) {
		l := listener(unix.AF_INET, ap("198.51.100.1:11030"))
		defer unix.Close(l)
		fd := sock(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK)
		defer unix.Close(fd)
		err := unix.Connect(fd, sa(ap("198.51.100.1:11030")))
		if err == unix.EINPROGRESS {
			p.say("poll %s", pollOne(fd, unix.POLLOUT, 2000))
		} else {
			p.say("connect %s", errno(err)) // Linux may finish a connection to itself at once
		}
		p.say("SO_ERROR %s", getInt(fd, unix.SOL_SOCKET, unix.SO_ERROR))
		err = unix.Connect(fd, sa(ap("198.51.100.1:11030")))
		p.say("connect again %s", errno(err))
		p.say("listener poll %s", pollOne(l, unix.POLLIN, 2000))
		s, _, err := unix.Accept4(l, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		p.say("accept4 %s", errno(err))
		if err == nil {
			fl, _ := unix.FcntlInt(uintptr(s), unix.F_GETFL, 0)
			fd, _ := unix.FcntlInt(uintptr(s), unix.F_GETFD, 0)
			p.say("accepted O_NONBLOCK %v FD_CLOEXEC %v", fl&unix.O_NONBLOCK != 0, fd&unix.FD_CLOEXEC != 0)
			unix.Close(s)
		}
		unix.SetNonblock(l, true)
		_, _, err = unix.Accept(l)
		p.say("non-blocking accept, none pending %s", errno(err))
	}},
	{"tcp-shutdown", func(p *probe) {
		c, s := connected(unix.AF_INET, ap("198.51.100.1:11040"))
		defer unix.Close(c)
		defer unix.Close(s)
		p.say("shutdown WR %s", errno(unix.Shutdown(c, unix.SHUT_WR)))
		p.say("server poll %s", pollOne(s, unix.POLLIN|unix.POLLRDHUP, 2000))
		p.say("server read %s", readStr(s, 4))
		_, err := unix.Write(c, []byte("x"))
		p.say("client write after SHUT_WR %s", errno(err))
		unix.Write(s, []byte("back"))
		p.say("client read %s", readStr(c, 8))
		// The half-open connection carries data on: the server, past the client's FIN, sends more.
		time.Sleep(50 * time.Millisecond)
		go func() {
			big := make([]byte, 200000)
			for len(big) > 0 {
				n, err := unix.Write(s, big)
				if err != nil {
					return
				}
				big = big[n:]
			}
		}()
		got := 0
		for got < 200000 {
			n, err := unix.Read(c, make([]byte, 65536))
			if n <= 0 || err != nil {
				break
			}
			got += n
		}
		p.say("client read past its FIN: %d bytes", got)
		p.say("shutdown RD %s", errno(unix.Shutdown(c, unix.SHUT_RD)))
		p.say("client read after SHUT_RD %s", readStr(c, 8))
		p.say("shutdown bad how %s", errno(unix.Shutdown(c, 7)))
		p.say("server close, client poll %s", func() string {
			unix.Close(s)
			s = -1
			return pollOne(c, unix.POLLIN|unix.POLLRDHUP, 2000)
		}())
	}},
	{"tcp-reset", func(p *probe) {
		c, s := connected(unix.AF_INET, ap("198.51.100.1:11050"))
		defer unix.Close(c)
		unix.Write(c, []byte("unread"))
		pollOne(s, unix.POLLIN, 2000)
		unix.Close(s) // with data unread: RST
		p.say("poll %s", pollOne(c, unix.POLLIN, 2000))
		p.say("read %s", readStr(c, 8))
		p.say("read again %s", readStr(c, 8))
		_, err := unix.Write(c, []byte("x"))
		p.say("write %s", errno(err))
	}},
	{"tcp-linger0", func(p *probe) {
		c, s := connected(unix.AF_INET, ap("198.51.100.1:11060"))
		defer unix.Close(c)
		must(unix.SetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}), "SO_LINGER")
		l, err := unix.GetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER)
		p.say("SO_LINGER %+v %s", *l, errno(err))
		unix.Close(s)
		p.say("poll %s", pollOne(c, unix.POLLIN, 2000))
		p.say("read %s", readStr(c, 8))
		p.say("SO_ERROR after %s", getInt(c, unix.SOL_SOCKET, unix.SO_ERROR))
	}},
	{"tcp-more-args", func(p *probe) {
		for _, typ := range []int{unix.SOCK_SEQPACKET, unix.SOCK_RDM, 0x1000 | unix.SOCK_STREAM} {
			_, err := unix.Socket(unix.AF_INET, typ, 0)
			p.say("socket type %#x: %s", typ, errno(err))
		}
		c, s := connected(unix.AF_INET6, ap("[2001:db8:198::1]:11080"))
		defer unix.Close(c)
		defer unix.Close(s)
		var small [8]byte
		l := uint32(len(small))
		p.say("getpeername into 8 bytes: %s len %d", rawSyscall(unix.SYS_GETPEERNAME, uintptr(c), ptr(&small), ptr(&l)), l)
		p.say("SO_PEERCRED %s", func() string {
			cred, err := unix.GetsockoptUcred(c, unix.SOL_SOCKET, unix.SO_PEERCRED)
			if err != nil {
				return errno(err)
			}
			return fmt.Sprintf("pid %d uid %d gid %d", cred.Pid, int32(cred.Uid), int32(cred.Gid))
		}())
		p.say("SO_LINGER default %s", func() string {
			l, err := unix.GetsockoptLinger(c, unix.SOL_SOCKET, unix.SO_LINGER)
			if err != nil {
				return errno(err)
			}
			return fmt.Sprintf("%+v", *l)
		}())
		p.say("TCP_INFO state %s", func() string {
			info, err := unix.GetsockoptTCPInfo(c, unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil {
				return errno(err)
			}
			return fmt.Sprint(info.State)
		}())
		p.say("SO_RCVLOWAT %s SO_SNDLOWAT %s", getInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT), getInt(c, unix.SOL_SOCKET, unix.SO_SNDLOWAT))
		p.say("SO_ZEROCOPY %s", getInt(c, unix.SOL_SOCKET, unix.SO_ZEROCOPY))
		p.say("unset IP_MULTICAST_ALL %s IP_MTU_DISCOVER %s", getInt(c, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL), getInt(c, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER))
		p.say("SO_ZEROCOPY set %s", errno(unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_ZEROCOPY, 1)))
		p.say("TCP_CORK set %s now %s", errno(unix.SetsockoptInt(c, unix.IPPROTO_TCP, unix.TCP_CORK, 1)), getInt(c, unix.IPPROTO_TCP, unix.TCP_CORK))
		p.say("TCP_QUICKACK %s", getInt(c, unix.IPPROTO_TCP, unix.TCP_QUICKACK))
		p.say("IPV6_V6ONLY on connected %s", errno(unix.SetsockoptInt(c, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)))
		p.say("IP_TTL on v6 socket %s", getInt(c, unix.IPPROTO_IP, unix.IP_TTL))
		p.say("IPV6_UNICAST_HOPS %s", getInt(c, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS))
		p.say("UDP option on TCP %s", errno(unix.SetsockoptInt(c, unix.IPPROTO_UDP, 1 /* UDP_CORK */, 1)))
		p.say("unknown level %s", errno(unix.SetsockoptInt(c, 9999, 1, 1)))
		p.say("unknown TCP option get %s", getInt(c, unix.IPPROTO_TCP, 9999))
		p.say("SO_RCVBUF 1 clamps to %s, SO_SNDBUF 1 to %s", func() string {
			unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
			return getInt(c, unix.SOL_SOCKET, unix.SO_RCVBUF)
		}(), func() string {
			unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_SNDBUF, 1)
			return getInt(c, unix.SOL_SOCKET, unix.SO_SNDBUF)
		}())
		p.say("recv MSG_ERRQUEUE %s", recvStr(c, 8, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT))
	}},
	{"tcp-timeouts", func(p *probe) {
		c, s := connected(unix.AF_INET, ap("198.51.100.1:11085"))
		defer unix.Close(c)
		defer unix.Close(s)
		u := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(u)
		p.say("UDP unset IP_MULTICAST_ALL %s IP_MTU_DISCOVER %s IP_MULTICAST_IF %s", getInt(u, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL),
			getInt(u, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER), getInt(u, unix.IPPROTO_IP, unix.IP_MULTICAST_IF))
		must(unix.SetsockoptInet4Addr(u, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, [4]byte{198, 51, 100, 1}), "IP_MULTICAST_IF")
		p.say("UDP IP_MULTICAST_IF set %s", func() string {
			a, err := unix.GetsockoptInet4Addr(u, unix.IPPROTO_IP, unix.IP_MULTICAST_IF)
			return fmt.Sprint(a, errno(err))
		}())
		for _, fd := range []int{c, u} {
			rcv, rerr := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
			snd, serr := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO)
			p.say("unset SO_RCVTIMEO %v %s SO_SNDTIMEO %v %s", *rcv, errno(rerr), *snd, errno(serr))
		}
		p.say("SO_RCVLOWAT set %s now %s", errno(unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 10)), getInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT))
		must(unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1), "SO_RCVLOWAT")
		must(unix.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000}), "SO_RCVTIMEO")
		tv, err := unix.GetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
		p.say("SO_RCVTIMEO %v %s", *tv, errno(err))
		start := time.Now()
		r := retryEINTR(func() string { return readStr(c, 8) })
		p.say("read %s after >= 100 ms: %v", r, time.Since(start) >= 100*time.Millisecond)
		p.say("recv %s", retryEINTR(func() string { return recvStr(c, 8, 0) }))
	}},
	{"tcp-accept-addr", func(p *probe) {
		l := listener(unix.AF_INET6, ap("[::]:11090"))
		defer unix.Close(l)
		c := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(c)
		must(unix.Connect(c, sa(ap("198.51.100.1:11090"))), "connect")
		var small [8]byte
		n := uint32(len(small))
		r, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(l), ptr(&small), ptr(&n), unix.SOCK_CLOEXEC, 0, 0)
		if e != 0 {
			p.say("accept into 8 bytes: %s", errno(e))
			return
		}
		defer unix.Close(int(r))
		p.say("accept into 8 bytes: len %d family %d", n, uint16(small[0])|uint16(small[1])<<8)
		p.say("accepted SO_DOMAIN %s SO_TYPE %s SO_PROTOCOL %s", getInt(int(r), unix.SOL_SOCKET, unix.SO_DOMAIN),
			getInt(int(r), unix.SOL_SOCKET, unix.SO_TYPE), getInt(int(r), unix.SOL_SOCKET, unix.SO_PROTOCOL))
		p.say("listen backlog 0 then accept: %s", func() string {
			l0 := sock(unix.AF_INET, unix.SOCK_STREAM)
			defer unix.Close(l0)
			unix.Bind(l0, sa(ap("198.51.100.1:11091")))
			unix.Listen(l0, 0)
			c0 := sock(unix.AF_INET, unix.SOCK_STREAM)
			defer unix.Close(c0)
			if err := unix.Connect(c0, sa(ap("198.51.100.1:11091"))); err != nil {
				return errno(err)
			}
			a, _, err := unix.Accept(l0)
			if err == nil {
				unix.Close(a)
			}
			return errno(err)
		}())
	}},
	{"tcp-oob", func(p *probe) {
		c, s := connected(unix.AF_INET, ap("198.51.100.1:11095"))
		defer unix.Close(c)
		defer unix.Close(s)
		p.say("send MSG_OOB %s", errno(unix.Sendto(c, []byte("ab"), unix.MSG_OOB, nil)))
		pollOne(s, unix.POLLIN, 2000)
		p.say("recv MSG_OOB %s", recvStr(s, 4, unix.MSG_OOB))
		p.say("recv inline %s", recvStr(s, 4, unix.MSG_DONTWAIT))
		p.say("SO_OOBINLINE %s", getInt(s, unix.SOL_SOCKET, unix.SO_OOBINLINE))
	}},
	{"tcp-broken-pipe", func(p *probe) {
		c, s := connected(unix.AF_INET, ap("198.51.100.1:11097"))
		defer unix.Close(c)
		unix.Close(s)
		pollOne(c, unix.POLLRDHUP, 2000) // the FIN
		// The first write after the peer closed gets an RST back; later ones fail.
		_, err := unix.Write(c, []byte("x"))
		p.say("first write %s", errno(err))
		p.say("then %s", pollOne(c, unix.POLLHUP, 2000))
		p.say("send MSG_NOSIGNAL %s", errno(unix.Sendto(c, []byte("x"), unix.MSG_NOSIGNAL, nil)))
		p.say("send again %s", errno(unix.Sendto(c, []byte("x"), unix.MSG_NOSIGNAL, nil)))
		p.say("SO_ERROR %s", getInt(c, unix.SOL_SOCKET, unix.SO_ERROR))
		p.say("read %s", readStr(c, 4))
		p.say("poll %s", pollOne(c, unix.POLLIN|unix.POLLOUT, 0))
	}},
	{"tcp-options", func(p *probe) {
		fd := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(fd)
		p.roundTrip(fd, []option{
			{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
			{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30},
			{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 5},
			{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 3},
			{"SO_REUSEADDR", unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
			{"SO_REUSEPORT", unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
			{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, 9},
			{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, 0x10},
			{"TCP_USER_TIMEOUT", unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 5000},
			{"TCP_MAXSEG", unix.IPPROTO_TCP, unix.TCP_MAXSEG, 1200},
		})
		p.say("TCP_KEEPIDLE 0 %s", errno(unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 0)))
		p.say("IP_TTL 256 %s", errno(unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, 256)))
		p.say("IP_TTL -1 (default) %s, now %s", errno(unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, -1)), getInt(fd, unix.IPPROTO_IP, unix.IP_TTL))
		p.say("short optlen %s", rawSyscall(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, ptr(new(int32)), 2))
		p.say("bad optval %s", rawSyscall(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 8, 4))
		var v int32
		l := uint32(4)
		p.say("getsockopt bad optlen pointer %s", rawSyscall(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_TYPE, ptr(&v), 8))
		l = 1
		p.say("getsockopt optlen 1: %s len %d", rawSyscall(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_TYPE, ptr(&v), ptr(&l)), l)
		p.say("SO_RCVBUF set 65536 doubles: %v", func() bool {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 65536)
			v, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
			return v == 131072
		}())
	}},
	{"tcp-v6", func(p *probe) {
		l := listener(unix.AF_INET6, ap("[::]:11070"))
		defer unix.Close(l)
		p.say("listener V6ONLY %s", getInt(l, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY))
		for _, to := range []string{"198.51.100.1:11070", "[2001:db8:198::1]:11070", "[::1]:11070", "127.0.0.1:11070", "[::ffff:198.51.100.1]:11070"} {
			family := unix.AF_INET6
			if ap(to).Addr().Is4() {
				family = unix.AF_INET
			}
			c := sock(family, unix.SOCK_STREAM)
			err := unix.Connect(c, sa(ap(to)))
			if err != nil {
				p.say("to %s: %s", to, errno(err))
				unix.Close(c)
				continue
			}
			s, from, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
			must(err, "accept")
			p.say("to %s: client %s server sees %s, server name %s", to, sockname(c, false), show(from, false), sockname(s, true))
			unix.Close(s)
			unix.Close(c)
		}
		o := sock(unix.AF_INET6, unix.SOCK_STREAM)
		defer unix.Close(o)
		unix.SetsockoptInt(o, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		p.say("v6only connect to v4-mapped %s", errno(unix.Connect(o, sa(ap("[::ffff:198.51.100.1]:11070")))))
		p.say("link-local bind without scope %s", errno(unix.Bind(o, sa(ap("[fe80::1]:0")))))
		p.say("v6only bind v4-mapped %s", errno(unix.Bind(o, sa(ap("[::ffff:198.51.100.1]:0")))))
	}},
	{"udp-basic", func(p *probe) {
		s := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(s)
		must(unix.Bind(s, sa(ap("198.51.100.1:11100"))), "bind")
		c := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(c)
		p.say("unbound name %s peer %s", sockname(c, false), peername(c, false))
		p.say("sendto %s", errno(unix.Sendto(c, []byte("one"), 0, sa(ap("198.51.100.1:11100")))))
		p.say("name after sendto %s", sockname(c, false))
		b := make([]byte, 2)
		n, from, err := unix.Recvfrom(s, b, unix.MSG_TRUNC)
		p.say("recvfrom MSG_TRUNC into 2: n %d %q from %s %s", n, b, show(from, false), errno(err))
		p.say("recv empty %s", recvStr(s, 8, unix.MSG_DONTWAIT))
		p.say("zero-length sendto %s", errno(unix.Sendto(c, nil, 0, sa(ap("198.51.100.1:11100")))))
		p.say("poll %s", pollOne(s, unix.POLLIN, 2000))
		p.say("recv zero-length %s", recvStr(s, 8, 0))
		unix.Sendto(c, []byte("peeked"), 0, sa(ap("198.51.100.1:11100")))
		p.say("peek %s", recvStr(s, 3, unix.MSG_PEEK))
		n2, err := unix.IoctlGetInt(s, unix.SIOCINQ)
		p.say("FIONREAD %d %s", n2, errno(err))
		p.say("recv after peek %s", recvStr(s, 16, 0))
		p.say("send unconnected %s", errno(func() error { _, err := unix.Write(c, []byte("x")); return err }()))
		p.say("sendto foreign family %s", errno(unix.Sendto(c, []byte("x"), 0, sa(ap("[2001:db8:198::1]:11100")))))
		p.say("shutdown unconnected %s", errno(unix.Shutdown(c, unix.SHUT_RDWR)))
		p.say("listen %s", errno(unix.Listen(c, 1)))
		p.say("subnet broadcast without SO_BROADCAST %s", errno(unix.Sendto(c, []byte("x"), 0, sa(ap("198.51.100.255:11100")))))
		p.say("SO_BROADCAST %s", getInt(c, unix.SOL_SOCKET, unix.SO_BROADCAST))
		p.say("big datagram %s", errno(unix.Sendto(c, make([]byte, 70000), 0, sa(ap("198.51.100.1:11100")))))
	}},
	{"udp-pktinfo", func(p *probe) {
		// ipi_addr is the datagram's destination, ipi_spec_dst the address a reply comes
		// from: the interface's own for a broadcast. A dual-stack socket's IPV6_PKTINFO
		// carries an IPv4 destination v4-mapped.
		r, s := udpPair("0.0.0.0:11190")
		defer unix.Close(r)
		defer unix.Close(s)
		must(unix.SetsockoptInt(r, unix.IPPROTO_IP, unix.IP_PKTINFO, 1), "IP_PKTINFO")
		must(unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_BROADCAST, 1), "SO_BROADCAST")
		for _, dst := range []string{"198.51.100.255:11190", "198.51.100.1:11190"} {
			must(unix.Sendto(s, []byte("x"), 0, sa(ap(dst))), "sendto")
			p.say("to %s: %s", dst, pktinfo(r))
		}
		r6 := sock(unix.AF_INET6, unix.SOCK_DGRAM)
		defer unix.Close(r6)
		must(unix.SetsockoptInt(r6, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0), "IPV6_V6ONLY")
		must(unix.Bind(r6, sa(ap("[::]:11191"))), "bind")
		must(unix.SetsockoptInt(r6, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1), "IPV6_RECVPKTINFO")
		must(unix.Sendto(s, []byte("x"), 0, sa(ap("198.51.100.1:11191"))), "sendto")
		p.say("dual-stack: %s", pktinfo(r6))
	}},
	{"udp-gso", func(p *probe) {
		// UDP segmentation asked by a sendmsg control message (QUIC stacks): the datagrams
		// arrive cut at the segment size.
		r, s := udpPair("198.51.100.1:11195")
		defer unix.Close(r)
		defer unix.Close(s)
		p.say("UDP_SEGMENT %s", getInt(s, unix.IPPROTO_UDP, unix.UDP_SEGMENT))
		n, err := unix.SendmsgN(s, make([]byte, 2500), udpSegment(1000), sa(ap("198.51.100.1:11195")), 0)
		p.say("sendmsg 2500 in segments of 1000: %d %s", n, errno(err))
		b := make([]byte, 4096)
		for range 3 {
			n, _, err := unix.Recvfrom(r, b, 0)
			p.say("received %d %s", n, errno(err))
		}
		_, err = unix.SendmsgN(s, make([]byte, 129*100), udpSegment(100), sa(ap("198.51.100.1:11195")), 0)
		p.say("129 segments %s", errno(err))
	}},
	{"udp-connected", func(p *probe) {
		s := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(s)
		must(unix.Bind(s, sa(ap("198.51.100.1:11110"))), "bind")
		other := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(other)
		must(unix.Bind(other, sa(ap("198.51.100.1:11111"))), "bind")
		c := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(c)
		p.say("connect %s", errno(unix.Connect(c, sa(ap("198.51.100.1:11110")))))
		p.say("name %s peer %s", sockname(c, false), peername(c, true))
		cname, _ := unix.Getsockname(c)
		unix.Sendto(other, []byte("stranger"), 0, cname)
		unix.Sendto(s, []byte("peer"), 0, cname)
		p.say("recv (only the peer's) %s", recvStr(c, 16, 0))
		p.say("recv more %s", recvStr(c, 16, unix.MSG_DONTWAIT))
		p.say("sendto other while connected %s", errno(unix.Sendto(c, []byte("x"), 0, sa(ap("198.51.100.1:11111")))))
		p.say("other got %s", recvStr(other, 16, 0))
		p.say("connect AF_UNSPEC %s", rawSyscall(unix.SYS_CONNECT, uintptr(c), ptr(&unix.RawSockaddrInet4{Family: unix.AF_UNSPEC}), unix.SizeofSockaddrInet4))
		p.say("after disconnect peer %s name %s", peername(c, true), sockname(c, false))
		p.say("connect to unspecified %s, peer %s", errno(unix.Connect(c, sa(ap("0.0.0.0:11110")))), peername(c, true))
	}},
	{"udp-refused", func(p *probe) {
		c := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(c)
		must(unix.Connect(c, sa(ap("198.51.100.1:11120"))), "connect")
		p.say("send %s", errno(func() error { _, err := unix.Write(c, []byte("x")); return err }()))
		p.say("poll %s", pollOne(c, unix.POLLIN, 2000))
		p.say("recv %s", recvStr(c, 8, 0))
		p.say("recv again %s", recvStr(c, 8, unix.MSG_DONTWAIT))
		unix.Write(c, []byte("x"))
		pollOne(c, unix.POLLIN, 2000) // the error's arrival (POLLERR on Linux, see udp-refused: poll)
		p.say("SO_ERROR %s then %s", getInt(c, unix.SOL_SOCKET, unix.SO_ERROR), getInt(c, unix.SOL_SOCKET, unix.SO_ERROR))
		u := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(u)
		unix.Sendto(u, []byte("x"), 0, sa(ap("198.51.100.1:11120")))
		time.Sleep(200 * time.Millisecond)
		p.say("unconnected: SO_ERROR %s recv %s", getInt(u, unix.SOL_SOCKET, unix.SO_ERROR), recvStr(u, 8, unix.MSG_DONTWAIT))
	}},
	{"udp-options", func(p *probe) {
		fd := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(fd)
		p.roundTrip(fd, []option{
			{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, 9},
			{"IP_MULTICAST_TTL", unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 4},
			{"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
			{"IP_RECVTOS", unix.IPPROTO_IP, unix.IP_RECVTOS, 1},
			{"IP_PKTINFO", unix.IPPROTO_IP, unix.IP_PKTINFO, 1},
			{"IP_RECVERR", unix.IPPROTO_IP, unix.IP_RECVERR, 1},
			{"SO_BROADCAST", unix.SOL_SOCKET, unix.SO_BROADCAST, 1},
			{"SO_TIMESTAMP", unix.SOL_SOCKET, unix.SO_TIMESTAMP, 1},
		})
		p.say("TCP_NODELAY on UDP %s", errno(unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)))
		p.say("IPV6 option on v4 socket %s", errno(unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)))
	}},
	{"udp-v6", func(p *probe) {
		s := sock(unix.AF_INET6, unix.SOCK_DGRAM)
		defer unix.Close(s)
		must(unix.Bind(s, sa(ap("[::]:11130"))), "bind")
		for _, to := range []string{"198.51.100.1:11130", "[2001:db8:198::1]:11130", "[::1]:11130", "127.0.0.1:11130"} {
			family := unix.AF_INET6
			if ap(to).Addr().Is4() {
				family = unix.AF_INET
			}
			c := sock(family, unix.SOCK_DGRAM)
			err := unix.Sendto(c, []byte(to), 0, sa(ap(to)))
			b := make([]byte, 64)
			n, from, rerr := unix.Recvfrom(s, b, 0)
			p.say("to %s: %s, got %q from %s %s", to, errno(err), b[:max(n, 0)], show(from, false), errno(rerr))
			unix.Close(c)
		}
		c := sock(unix.AF_INET6, unix.SOCK_DGRAM)
		defer unix.Close(c)
		p.say("v4-mapped sendto from v6 socket %s", errno(unix.Sendto(c, []byte("m"), 0, sa(ap("[::ffff:198.51.100.1]:11130")))))
		p.say("got %s", recvStr(s, 8, 0))
		p.say("name %s", sockname(c, false))
	}},
	{"udp-more", func(p *probe) {
		a := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(a)
		b := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(b)
		must(unix.Bind(a, sa(ap("198.51.100.1:11140"))), "bind")
		p.say("second bind, no reuse %s", errno(unix.Bind(b, sa(ap("198.51.100.1:11140")))))
		r1 := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(r1)
		r2 := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(r2)
		for _, fd := range []int{r1, r2} {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		}
		p.say("SO_REUSEADDR both: %s %s", errno(unix.Bind(r1, sa(ap("0.0.0.0:11141")))), errno(unix.Bind(r2, sa(ap("0.0.0.0:11141")))))
		p.say("sendto port 0 %s", errno(unix.Sendto(b, []byte("x"), 0, sa(ap("198.51.100.1:0")))))
		p.say("connect to subnet broadcast without SO_BROADCAST %s", errno(unix.Connect(b, sa(ap("198.51.100.255:11140")))))
		c := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(c)
		unix.SetsockoptInt(a, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		unix.SetsockoptInt(a, unix.IPPROTO_IP, unix.IP_RECVTTL, 1)
		unix.Sendto(c, []byte("hello"), 0, sa(ap("198.51.100.1:11140")))
		buf := make([]byte, 3)
		oob := make([]byte, 256)
		n, oobn, flags, from, err := unix.Recvmsg(a, buf, oob, 0)
		p.say("recvmsg into 3: n %d flags MSG_TRUNC %v from %s %s", n, flags&unix.MSG_TRUNC != 0, show(from, false), errno(err))
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			switch {
			case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO:
				info := (*unix.Inet4Pktinfo)(unsafe.Pointer(&m.Data[0]))
				p.say("  IP_PKTINFO spec_dst %v addr %v", info.Spec_dst, info.Addr)
			case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL:
				p.say("  IP_TTL %d", m.Data[0])
			default:
				p.say("  cmsg level %d type %d", m.Header.Level, m.Header.Type)
			}
		}
		n, err = unix.SendmsgN(c, []byte("via sendmsg"), nil, sa(ap("198.51.100.1:11140")), 0)
		p.say("sendmsg %d %s", n, errno(err))
		p.say("recv %s", recvStr(a, 32, 0))
		var name [4]byte
		iov := unix.Iovec{Base: &buf[0], Len: uint64(len(buf))}
		msg := unix.Msghdr{Name: &name[0], Namelen: uint32(len(name)), Iov: &iov, Iovlen: 1}
		unix.Sendto(c, []byte("x"), 0, sa(ap("198.51.100.1:11140")))
		r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(a), ptr(&msg), 0)
		p.say("recvmsg name buffer 4: %d %s namelen %d", int(r), errno(e), msg.Namelen)
		p.say("recv MSG_ERRQUEUE %s", recvStr(a, 8, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT))
	}},
	{"fd-level", func(p *probe) {
		fd := sock(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK)
		fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		p.say("F_GETFL accmode %d nonblock %v", fl&unix.O_ACCMODE, fl&unix.O_NONBLOCK != 0)
		unix.SetNonblock(fd, false)
		fl, _ = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		p.say("after clearing: nonblock %v", fl&unix.O_NONBLOCK != 0)
		var st unix.Stat_t
		unix.Fstat(fd, &st)
		p.say("fstat S_IFSOCK %v", st.Mode&unix.S_IFMT == unix.S_IFSOCK)
		d, _ := unix.Dup(fd)
		unix.Close(fd)
		p.say("dup: bind %s name %s", errno(unix.Bind(d, sa(ap("198.51.100.1:11150")))), sockname(d, true))
		p.say("dup: listen %s SO_ACCEPTCONN %s", errno(unix.Listen(d, 4)), getInt(d, unix.SOL_SOCKET, unix.SO_ACCEPTCONN))
		p.say("shutdown listener SHUT_RD %s", errno(unix.Shutdown(d, unix.SHUT_RD)))
		unix.SetNonblock(d, true)
		_, _, err := unix.Accept(d)
		p.say("accept after shutdown %s", errno(err))
		unix.Close(d)
		p.say("closed fd: getsockname %s", sockname(d, true))
	}},
	{"interfaces", func(p *probe) {
		fd := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("ztnc0")
		must(err, "ifreq")
		p.say("SIOCGIFINDEX %s", errno(unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr)))
		err = unix.IoctlIfreq(fd, unix.SIOCGIFADDR, ifr)
		a, _ := ifr.Inet4Addr()
		p.say("SIOCGIFADDR %s %v", errno(err), a)
		err = unix.IoctlIfreq(fd, unix.SIOCGIFNETMASK, ifr)
		a, _ = ifr.Inet4Addr()
		p.say("SIOCGIFNETMASK %s %v", errno(err), a)
		err = unix.IoctlIfreq(fd, unix.SIOCGIFBRDADDR, ifr)
		a, _ = ifr.Inet4Addr()
		p.say("SIOCGIFBRDADDR %s %v", errno(err), a)
		err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr)
		fl := ifr.Uint16()
		p.say("SIOCGIFFLAGS %s UP %v BROADCAST %v LOOPBACK %v RUNNING %v MULTICAST %v", errno(err),
			fl&unix.IFF_UP != 0, fl&unix.IFF_BROADCAST != 0, fl&unix.IFF_LOOPBACK != 0, fl&unix.IFF_RUNNING != 0, fl&unix.IFF_MULTICAST != 0)
		lo, _ := unix.NewIfreq("lo")
		err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, lo)
		fl = lo.Uint16()
		p.say("lo SIOCGIFFLAGS %s UP %v LOOPBACK %v", errno(err), fl&unix.IFF_UP != 0, fl&unix.IFF_LOOPBACK != 0)
		none, _ := unix.NewIfreq("nosuch0")
		p.say("unknown interface %s", errno(unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, none)))
		p.say("SO_BINDTODEVICE ztnc0 %s", errno(unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "ztnc0")))
		p.say("SO_BINDTODEVICE nosuch0 %s", errno(unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "nosuch0")))
	}},
	{"fork-accept", func(p *probe) {
		// A prefork server: a child process accepts on the listener it inherited.
		l := listener(unix.AF_INET, ap("198.51.100.1:11160"))
		defer unix.Close(l)
		self, err := os.Executable()
		must(err, "executable")
		pid, err := syscall.ForkExec(self, []string{self, "child-accept"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2, uintptr(l)}})
		must(err, "fork")
		c := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(c)
		p.say("connect %s", errno(unix.Connect(c, sa(ap("198.51.100.1:11160")))))
		p.say("read %s", readStr(c, 32))
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		p.say("child exit %d", ws.ExitStatus())
	}},
	{"scm-rights", func(p *probe) {
		c, s := connected(unix.AF_INET, ap("198.51.100.1:11165"))
		defer unix.Close(s)
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		must(err, "socketpair")
		defer unix.Close(pair[0])
		defer unix.Close(pair[1])
		must(unix.Sendmsg(pair[0], []byte("fd"), unix.UnixRights(c), nil, 0), "sendmsg")
		unix.Close(c)
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := unix.Recvmsg(pair[1], make([]byte, 2), oob, 0)
		must(err, "recvmsg")
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds, err := unix.ParseUnixRights(&msgs[0])
		must(err, "rights")
		got := fds[0]
		defer unix.Close(got)
		p.say("passed fd: peer %s SO_TYPE %s", peername(got, true), getInt(got, unix.SOL_SOCKET, unix.SO_TYPE))
		unix.Write(got, []byte("through"))
		p.say("server reads %s", readStr(s, 16))
	}},
	{"epoll", func(p *probe) {
		l := listener(unix.AF_INET, ap("198.51.100.1:11170"))
		defer unix.Close(l)
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		must(err, "epoll")
		defer unix.Close(ep)
		// waitFor collects edges until all of want have come (2 s at most) and shows which of
		// show came: how many edges carry them may differ, what they add up to may not.
		waitFor := func(want, show uint32) string {
			var seen uint32
			deadline := time.Now().Add(2 * time.Second)
			for seen&want != want && time.Now().Before(deadline) {
				evs := make([]unix.EpollEvent, 4)
				n, err := unix.EpollWait(ep, evs, 100)
				if err != nil && err != unix.EINTR {
					return errno(err)
				}
				for _, e := range evs[:max(n, 0)] {
					seen |= e.Events
				}
			}
			var out []string
			for _, b := range []struct {
				bit  uint32
				name string
			}{{unix.EPOLLIN, "IN"}, {unix.EPOLLOUT, "OUT"}, {unix.EPOLLERR, "ERR"}, {unix.EPOLLHUP, "HUP"}, {unix.EPOLLRDHUP, "RDHUP"}} {
				if seen&show&b.bit != 0 {
					out = append(out, b.name)
				}
			}
			return strings.Join(out, "|")
		}
		c := sock(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK)
		defer unix.Close(c)
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c)}
		p.say("add before connect %s", errno(unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, c, &ev)))
		err = unix.Connect(c, sa(ap("198.51.100.1:11170")))
		p.say("connect %s, then %s", errno(err), waitFor(unix.EPOLLOUT, unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP))
		s, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
		must(err, "accept")
		unix.Write(s, []byte("data"))
		p.say("data: %s", waitFor(unix.EPOLLIN, unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP|unix.EPOLLRDHUP))
		p.say("read %s", readStr(c, 8))
		unix.Shutdown(s, unix.SHUT_WR)
		p.say("peer SHUT_WR: %s", waitFor(unix.EPOLLIN|unix.EPOLLRDHUP, unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP|unix.EPOLLRDHUP))
		unix.SetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
		unix.Close(s)
		p.say("peer reset: %s", waitFor(unix.EPOLLHUP, unix.EPOLLERR|unix.EPOLLHUP))
		p.say("write after %s", errno(unix.Sendto(c, []byte("x"), unix.MSG_NOSIGNAL, nil)))
	}},
	{"sendfile", func(p *probe) {
		c, s := connected(unix.AF_INET, ap("198.51.100.1:11175"))
		defer unix.Close(c)
		defer unix.Close(s)
		f, err := os.CreateTemp("", "parityprog")
		must(err, "temp")
		defer os.Remove(f.Name())
		defer f.Close()
		f.Write(make([]byte, 100000))
		var off int64
		total := 0
		for total < 100000 {
			n, err := unix.Sendfile(c, int(f.Fd()), &off, 100000-total)
			if err != nil {
				p.say("sendfile %s", errno(err))
				break
			}
			total += n
		}
		unix.Shutdown(c, unix.SHUT_WR)
		got := 0
		buf := make([]byte, 65536)
		for {
			n, err := unix.Read(s, buf)
			if n <= 0 || err != nil {
				break
			}
			got += n
		}
		p.say("sent %d, received %d", total, got)
	}},
	{"accept-inherits", func(p *probe) {
		l := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(l)
		opts := []option{
			{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
			{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 77},
			{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, 0x10},
			{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, 33},
			{"SO_REUSEADDR", unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
		}
		for _, o := range opts {
			unix.SetsockoptInt(l, o.level, o.opt, o.set)
		}
		unix.SetsockoptTimeval(l, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 3})
		must(unix.Bind(l, sa(ap("198.51.100.1:11180"))), "bind")
		must(unix.Listen(l, 4), "listen")
		c := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(c)
		must(unix.Connect(c, sa(ap("198.51.100.1:11180"))), "connect")
		s, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
		must(err, "accept")
		defer unix.Close(s)
		for _, o := range opts {
			p.say("accepted %s %s", o.name, getInt(s, o.level, o.opt))
		}
		tv, err := unix.GetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
		p.say("accepted SO_RCVTIMEO %v %s", *tv, errno(err))
	}},
	{"ping-socket", func(p *probe) {
		for _, to := range []string{"198.51.100.1", "127.0.0.1"} {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
			if err != nil {
				p.say("socket %s", errno(err))
				return
			}
			p.say("SO_TYPE %s SO_PROTOCOL %s", getInt(fd, unix.SOL_SOCKET, unix.SO_TYPE), getInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL))
			// Echo request, id 0x1234 (the kernel puts the socket's own), seq 7, checksum left
			// to the kernel.
			req := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 7, 'p', 'i', 'n', 'g'}
			p.say("sendto %s: %s", to, errno(unix.Sendto(fd, req, 0, sa(netip.AddrPortFrom(netip.MustParseAddr(to), 0)))))
			unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
			b := make([]byte, 64)
			n, from, err := unix.Recvfrom(fd, b, 0)
			for err == unix.EINTR { // SO_RCVTIMEO: see retryEINTR
				n, from, err = unix.Recvfrom(fd, b, 0)
			}
			if err != nil {
				p.say("recvfrom %s", errno(err))
			} else {
				id := uint16(b[4])<<8 | uint16(b[5])
				name, _ := unix.Getsockname(fd)
				port := name.(*unix.SockaddrInet4).Port
				p.say("reply %d bytes type %d code %d id is the socket's %v seq %d %q from %s", n, b[0], b[1], int(id) == port, b[7], b[8:n], show(from, true))
			}
			p.say("short packet %s", errno(unix.Sendto(fd, []byte{8, 0, 0}, 0, sa(netip.AddrPortFrom(netip.MustParseAddr(to), 0)))))
			p.say("not an echo request %s", errno(unix.Sendto(fd, []byte{0, 0, 0, 0, 0, 0, 0, 0}, 0, sa(netip.AddrPortFrom(netip.MustParseAddr(to), 0)))))
			unix.Close(fd)
		}
	}},
	{"tcp-names", func(p *probe) {
		l := sock(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC)
		defer unix.Close(l)
		fd, _ := unix.FcntlInt(uintptr(l), unix.F_GETFD, 0)
		p.say("SOCK_CLOEXEC sets FD_CLOEXEC %v", fd&unix.FD_CLOEXEC != 0)
		p.say("listen unbound %s, name %s", errno(unix.Listen(l, 4)), sockname(l, false))
		name, _ := unix.Getsockname(l)
		port := name.(*unix.SockaddrInet4).Port
		for _, to := range []string{"198.51.100.1", "127.0.0.1"} {
			c := sock(unix.AF_INET, unix.SOCK_STREAM)
			must(unix.Bind(c, sa(ap("0.0.0.0:0"))), "bind")
			p.say("bound to any: %s", sockname(c, false))
			err := unix.Connect(c, &unix.SockaddrInet4{Addr: netip.MustParseAddr(to).As4(), Port: port})
			p.say("connect to %s %s: name %s", to, errno(err), sockname(c, false))
			s, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
			if err == nil {
				unix.Close(s)
			}
			unix.Close(c)
		}
		_, _, err := unix.Accept4(l, 0x7fff0000)
		p.say("accept4 bad flags %s", errno(err))
		a := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(a)
		b := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(b)
		for _, fd := range []int{a, b} {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
		p.say("SO_REUSEPORT listeners: %s %s, %s %s", errno(unix.Bind(a, sa(ap("198.51.100.1:11190")))), errno(unix.Listen(a, 16)),
			errno(unix.Bind(b, sa(ap("198.51.100.1:11190")))), errno(unix.Listen(b, 16)))
		accepted := 0
		for i := 0; i < 8; i++ {
			c := sock(unix.AF_INET, unix.SOCK_STREAM)
			if unix.Connect(c, sa(ap("198.51.100.1:11190"))) == nil {
				accepted++
			}
			unix.Close(c)
		}
		p.say("connections to the shared port: %d", accepted)
	}},
	{"unreachable", func(p *probe) {
		c := sock(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK)
		defer unix.Close(c)
		// Nobody has .2: address resolution fails after its probes (3 s on both stacks).
		p.say("connect %s", errno(unix.Connect(c, sa(ap("198.51.100.2:80")))))
		p.say("poll %s", pollOne(c, unix.POLLOUT, 8000))
		p.say("SO_ERROR %s", getInt(c, unix.SOL_SOCKET, unix.SO_ERROR))
	}},
	{"bad-args", func(p *probe) {
		u := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(u)
		must(unix.Bind(u, sa(ap("198.51.100.1:11200"))), "bind")
		to := unix.RawSockaddrInet4{Family: unix.AF_INET, Port: 11200<<8&0xff00 | 11200>>8, Addr: [4]byte{198, 51, 100, 1}}
		data := []byte("x")
		iov := rawIovec{ptr(&data[0]), 1}
		badIov := rawIovec{8, 4}
		good := rawMsghdr{name: ptr(&to), namelen: unix.SizeofSockaddrInet4, iov: ptr(&iov), iovlen: 1}
		msg := func(edit func(m *rawMsghdr)) string {
			m := good
			edit(&m)
			return rawSyscall(unix.SYS_SENDMSG, uintptr(u), ptr(&m), 0)
		}
		p.say("sendmsg ok %s", msg(func(*rawMsghdr) {}))
		p.say("sendmsg bad iov pointer %s", msg(func(m *rawMsghdr) { m.iov = 8 }))
		p.say("sendmsg 2000 iovecs %s", msg(func(m *rawMsghdr) { m.iovlen = 2000 }))
		p.say("sendmsg bad name pointer %s", msg(func(m *rawMsghdr) { m.name = 8 }))
		p.say("sendmsg namelen 3 %s", msg(func(m *rawMsghdr) { m.namelen = 3 }))
		p.say("sendmsg bad data pointer %s", msg(func(m *rawMsghdr) { m.iov = ptr(&badIov) }))
		p.say("sendmsg bad control pointer %s", msg(func(m *rawMsghdr) { m.control, m.controllen = 8, 32 }))
		p.say("sendto addrlen 1000 %s", rawSyscall(unix.SYS_SENDTO, uintptr(u), ptr(&data[0]), 1, 0, ptr(&to), 1000))
		p.say("recv the good one %s", recvStr(u, 8, 0))
		rm := rawMsghdr{iov: 8, iovlen: 1}
		p.say("recvmsg bad iov pointer %s", rawSyscall(unix.SYS_RECVMSG, uintptr(u), ptr(&rm), unix.MSG_DONTWAIT))
		t := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(t)
		p.say("connect addrlen 1000 %s", rawSyscall(unix.SYS_CONNECT, uintptr(t), ptr(&to), 1000))
		p.say("bind addrlen 0 %s", rawSyscall(unix.SYS_BIND, uintptr(t), ptr(&to), 0))
		l := uint32(4)
		p.say("getsockopt NULL optval %s", rawSyscall(unix.SYS_GETSOCKOPT, uintptr(t), unix.SOL_SOCKET, unix.SO_TYPE, 0, ptr(&l)))
		p.say("setsockopt optlen -1 %s", rawSyscall(unix.SYS_SETSOCKOPT, uintptr(t), unix.IPPROTO_TCP, unix.TCP_NODELAY, ptr(new(int32)), ^uintptr(0)))
		p.say("setsockopt NULL optval %s", rawSyscall(unix.SYS_SETSOCKOPT, uintptr(t), unix.IPPROTO_TCP, unix.TCP_NODELAY, 0, 4))
		p.say("listen on fd -1 %s", errno(unix.Listen(-1, 1)))
		p.say("getsockname on a pipe %s", func() string {
			var fds [2]int
			unix.Pipe(fds[:])
			defer unix.Close(fds[0])
			defer unix.Close(fds[1])
			return sockname(fds[0], true)
		}())
	}},
	{"udp-v6-more", func(p *probe) {
		s6 := sock(unix.AF_INET6, unix.SOCK_DGRAM)
		defer unix.Close(s6)
		unix.SetsockoptInt(s6, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		p.say("v6only bind v4-mapped %s", errno(unix.Bind(s6, sa(ap("[::ffff:198.51.100.1]:11210")))))
		p.say("v6only sendto v4-mapped %s", errno(unix.Sendto(s6, []byte("x"), 0, sa(ap("[::ffff:198.51.100.1]:11210")))))
		p.say("v6only connect v4-mapped %s", errno(unix.Connect(s6, sa(ap("[::ffff:198.51.100.1]:11210")))))
		r := sock(unix.AF_INET6, unix.SOCK_DGRAM)
		defer unix.Close(r)
		must(unix.Bind(r, sa(ap("[2001:db8:198::1]:11211"))), "bind")
		p.roundTrip(r, []option{
			{"IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 9},
			{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 3},
			{"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
			{"IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0x20},
			{"IPV6_RECVPKTINFO", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1},
			{"IPV6_RECVHOPLIMIT", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1},
		})
		p.say("IPV6_UNICAST_HOPS -1 (default) %s, now %s", errno(unix.SetsockoptInt(r, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, -1)), getInt(r, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS))
		p.say("IPV6_UNICAST_HOPS 256 %s", errno(unix.SetsockoptInt(r, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 256)))
		c := sock(unix.AF_INET6, unix.SOCK_DGRAM)
		defer unix.Close(c)
		unix.SetsockoptInt(c, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 17)
		unix.Sendto(c, []byte("six"), 0, sa(ap("[2001:db8:198::1]:11211")))
		buf := make([]byte, 16)
		oob := make([]byte, 256)
		n, oobn, _, from, err := unix.Recvmsg(r, buf, oob, 0)
		p.say("recvmsg %d %q from %s %s", n, buf[:max(n, 0)], show(from, false), errno(err))
		msgs, _ := unix.ParseSocketControlMessage(oob[:max(oobn, 0)])
		for _, m := range msgs {
			switch {
			case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO:
				info := (*unix.Inet6Pktinfo)(unsafe.Pointer(&m.Data[0]))
				p.say("  IPV6_PKTINFO addr %v", netip.AddrFrom16(info.Addr))
			case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT:
				p.say("  IPV6_HOPLIMIT %d", m.Data[0])
			default:
				p.say("  cmsg level %d type %d", m.Header.Level, m.Header.Type)
			}
		}
	}},
	{"multicast", func(p *probe) {
		r := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(r)
		unix.SetsockoptInt(r, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		must(unix.Bind(r, sa(ap("0.0.0.0:11220"))), "bind")
		mreq := &unix.IPMreq{Multiaddr: [4]byte{239, 1, 2, 3}, Interface: [4]byte{198, 51, 100, 1}}
		p.say("IP_ADD_MEMBERSHIP %s", errno(unix.SetsockoptIPMreq(r, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq)))
		p.say("again %s", errno(unix.SetsockoptIPMreq(r, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq)))
		p.say("not multicast %s", errno(unix.SetsockoptIPMreq(r, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &unix.IPMreq{Multiaddr: [4]byte{198, 51, 100, 7}})))
		s := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(s)
		p.say("IP_MULTICAST_IF %s", errno(unix.SetsockoptInet4Addr(s, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, [4]byte{198, 51, 100, 1})))
		p.say("sendto group %s", errno(unix.Sendto(s, []byte("group"), 0, sa(ap("239.1.2.3:11220")))))
		unix.SetsockoptTimeval(r, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
		b := make([]byte, 16)
		n, from, err := unix.Recvfrom(r, b, 0)
		for err == unix.EINTR { // SO_RCVTIMEO: see retryEINTR
			n, from, err = unix.Recvfrom(r, b, 0)
		}
		p.say("member got %q from %s %s", b[:max(n, 0)], show(from, false), errno(err))
		p.say("IP_DROP_MEMBERSHIP %s, again %s", errno(unix.SetsockoptIPMreq(r, unix.IPPROTO_IP, unix.IP_DROP_MEMBERSHIP, mreq)),
			errno(unix.SetsockoptIPMreq(r, unix.IPPROTO_IP, unix.IP_DROP_MEMBERSHIP, mreq)))
	}},
	{"mmsg", func(p *probe) {
		r := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(r)
		must(unix.Bind(r, sa(ap("198.51.100.1:11230"))), "bind")
		c := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(c)
		to := &unix.RawSockaddrInet4{Family: unix.AF_INET, Port: 11230<<8&0xff00 | 11230>>8, Addr: [4]byte{198, 51, 100, 1}}
		type mmsghdr struct {
			hdr rawMsghdr
			len uint32
			_   uint32
		}
		payloads := [][]byte{[]byte("one"), []byte("two!"), []byte("three")}
		var iovs [3]rawIovec
		var out [3]mmsghdr
		for i, b := range payloads {
			iovs[i] = rawIovec{ptr(&b[0]), uint64(len(b))}
			out[i].hdr = rawMsghdr{name: ptr(to), namelen: unix.SizeofSockaddrInet4, iov: ptr(&iovs[i]), iovlen: 1}
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(c), ptr(&out), 3, 0, 0, 0)
		p.say("sendmmsg %d %s, lengths %d %d %d", int(n), errno(e), out[0].len, out[1].len, out[2].len)
		var bufs [4][8]byte
		var riovs [4]rawIovec
		var names [4]unix.RawSockaddrInet4
		var in [4]mmsghdr
		for i := range in {
			riovs[i] = rawIovec{ptr(&bufs[i]), 8}
			in[i].hdr = rawMsghdr{name: ptr(&names[i]), namelen: unix.SizeofSockaddrInet4, iov: ptr(&riovs[i]), iovlen: 1}
		}
		pollOne(r, unix.POLLIN, 2000)
		got := 0
		var lens []uint32
		for got < 3 {
			n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(r), ptr(&in[got]), uintptr(4-got), unix.MSG_WAITFORONE, 0, 0)
			if e != 0 {
				p.say("recvmmsg %s", errno(e))
				break
			}
			for i := got; i < got+int(n); i++ {
				lens = append(lens, in[i].len)
			}
			got += int(n)
		}
		p.say("recvmmsg %d datagrams, lengths %v, %q %q %q, from %v, port set %v", got, lens, bufs[0][:in[0].len], bufs[1][:in[1].len], bufs[2][:in[2].len],
			names[0].Addr, names[0].Port != 0)
		p.say("recvmmsg nothing left %s", func() string {
			_, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(r), ptr(&in[0]), 1, unix.MSG_DONTWAIT, 0, 0)
			return errno(e)
		}())
	}},
	{"close-unread-after-shutdown", func(p *probe) {
		// The client shuts down writing, then closes with the server's answer unread: RST.
		c, s := connected(unix.AF_INET, ap("198.51.100.1:11240"))
		defer unix.Close(s)
		unix.Shutdown(c, unix.SHUT_WR)
		p.say("server read %s", readStr(s, 8))
		unix.Write(s, []byte("answer"))
		pollOne(c, unix.POLLIN, 2000)
		unix.Close(c)
		p.say("server poll %s", pollOne(s, unix.POLLHUP, 2000))
		p.say("server send %s", errno(unix.Sendto(s, []byte("more"), unix.MSG_NOSIGNAL, nil)))
	}},
	{"timeouts-trapped", func(p *probe) {
		// Blocking calls the supervisor answers honour the socket's timeouts.
		elapsed := func(f func() error) string {
			start := time.Now()
			err := f()
			for err == unix.EINTR {
				err = f()
			}
			d := time.Since(start)
			return fmt.Sprintf("%s after >= 200 ms: %v, < 5 s: %v", errno(err), d >= 200*time.Millisecond, d < 5*time.Second)
		}
		tv := &unix.Timeval{Usec: 200000}
		l := listener(unix.AF_INET, ap("198.51.100.1:11250"))
		defer unix.Close(l)
		unix.SetsockoptTimeval(l, unix.SOL_SOCKET, unix.SO_RCVTIMEO, tv)
		p.say("accept %s", elapsed(func() error { _, _, err := unix.Accept(l); return err }))
		u := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(u)
		must(unix.Bind(u, sa(ap("198.51.100.1:11251"))), "bind")
		unix.SetsockoptTimeval(u, unix.SOL_SOCKET, unix.SO_RCVTIMEO, tv)
		p.say("recvfrom %s", elapsed(func() error { _, _, err := unix.Recvfrom(u, make([]byte, 8), 0); return err }))
		p.say("recvmsg %s", elapsed(func() error { _, _, _, _, err := unix.Recvmsg(u, make([]byte, 8), make([]byte, 64), 0); return err }))
		c := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(c)
		unix.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_SNDTIMEO, tv)
		// Nobody has .3: the handshake cannot finish within the timeout.
		p.say("connect %s", elapsed(func() error {
			start := time.Now()
			err := unix.Connect(c, sa(ap("198.51.100.3:80")))
			if err == unix.EINTR {
				// A signal (see retryEINTR) cut the wait short; the handshake goes on, as after
				// the timeout, and a second call would say EALREADY.
				time.Sleep(200*time.Millisecond - time.Since(start))
				return unix.EINPROGRESS
			}
			return err
		}))
		p.say("connect again %s", errno(unix.Connect(c, sa(ap("198.51.100.3:80")))))
	}},
	{"more-edges", func(p *probe) {
		fd := sock(unix.AF_INET, unix.SOCK_STREAM)
		defer unix.Close(fd)
		for _, v := range []option{
			{"IP_TTL 0", unix.IPPROTO_IP, unix.IP_TTL, 0},
			{"IP_TTL 255", unix.IPPROTO_IP, unix.IP_TTL, 255},
			{"TCP_MAXSEG 10", unix.IPPROTO_TCP, unix.TCP_MAXSEG, 10},
			{"TCP_MAXSEG 70000", unix.IPPROTO_TCP, unix.TCP_MAXSEG, 70000},
			{"TCP_KEEPCNT 0", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 0},
			{"TCP_KEEPINTVL 40000", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 40000},
			{"TCP_USER_TIMEOUT -1", unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, -1},
			{"SO_RCVLOWAT -1", unix.SOL_SOCKET, unix.SO_RCVLOWAT, -1},
		} {
			p.say("%s %s", v.name, errno(unix.SetsockoptInt(fd, v.level, v.opt, v.set)))
		}
		c := sock(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK)
		defer unix.Close(c)
		unix.Connect(c, sa(ap("198.51.100.3:80"))) // nobody: stays in SYN_SENT for a while
		p.say("listen while connecting %s", errno(unix.Listen(c, 1)))
		p.say("bind while connecting %s", errno(unix.Bind(c, sa(ap("198.51.100.1:0")))))
		p.say("nonblocking connect again while connecting %s", errno(unix.Connect(c, sa(ap("198.51.100.3:80")))))
		p.say("send while connecting %s", errno(unix.Sendto(c, []byte("x"), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil)))
		p.say("getpeername while connecting %s", peername(c, true))
	}},
	{"udp-unreachable", func(p *probe) {
		u := sock(unix.AF_INET, unix.SOCK_DGRAM)
		defer unix.Close(u)
		must(unix.Connect(u, sa(ap("198.51.100.3:9"))), "connect")
		_, err := unix.Write(u, []byte("x"))
		p.say("send %s", errno(err))
		// Address resolution fails after ~3 s on both stacks.
		pollOne(u, unix.POLLIN, 3500)
		p.say("then recv %s", recvStr(u, 8, unix.MSG_DONTWAIT))
	}},
}

// option is an integer socket option and a value to set.
type option struct {
	name       string
	level, opt int
	set        int
}

// roundTrip shows each option's default, what setting it says, and its value after.
func (p *probe) roundTrip(fd int, opts []option) {
	for _, o := range opts {
		before := getInt(fd, o.level, o.opt)
		err := unix.SetsockoptInt(fd, o.level, o.opt, o.set)
		p.say("%s default %s set %d: %s, now %s", o.name, before, o.set, errno(err), getInt(fd, o.level, o.opt))
	}
}

// retryEINTR calls f again while it says EINTR: calls on a socket with a timeout fail with
// EINTR when a signal comes, even with SA_RESTART, and the Go runtime sends itself signals
// (preemption) at any time, on Linux's stack as under ztnc-run.
func retryEINTR(f func() string) string {
	for {
		if r := f(); r != "EINTR" {
			return r
		}
	}
}

// str says what f returns under the label.
func (p *probe) str(label string, f func() string) { p.say("%s %s", label, f()) }

// childAccept is the child of case fork-accept: it accepts on fd 3 and answers.
func childAccept() {
	s, _, err := unix.Accept4(3, unix.SOCK_CLOEXEC)
	must(err, "child accept")
	unix.Write(s, []byte("from the child"))
	unix.Close(s)
}

// rawMsghdr and rawIovec are struct msghdr and struct iovec with plain numbers for pointers,
// so that cases can hand the kernel bad ones.
type rawMsghdr struct {
	name       uintptr
	namelen    uint32
	_          uint32
	iov        uintptr
	iovlen     uint64
	control    uintptr
	controllen uint64
	flags      int32
	_          uint32
}

type rawIovec struct {
	base   uintptr
	length uint64
}

// pktinfo receives a datagram on fd and shows its IP_PKTINFO and IPV6_PKTINFO messages (the
// addresses; interface numbers differ between the two runs).
func pktinfo(fd int) string {
	b, oob := make([]byte, 16), make([]byte, 256)
	_, oobn, _, _, err := unix.Recvmsg(fd, b, oob, 0)
	if err != nil {
		return errno(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return errno(err)
	}
	var out []string
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 12:
			out = append(out, fmt.Sprintf("IP_PKTINFO spec_dst %s addr %s", netip.AddrFrom4([4]byte(m.Data[4:8])), netip.AddrFrom4([4]byte(m.Data[8:12]))))
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 20:
			out = append(out, fmt.Sprintf("IPV6_PKTINFO addr %s", netip.AddrFrom16([16]byte(m.Data[:16]))))
		default:
			out = append(out, fmt.Sprintf("cmsg %d/%d", m.Header.Level, m.Header.Type))
		}
	}
	return strings.Join(out, ", ")
}

// udpPair returns an IPv4 datagram socket bound to at and an unbound one to send to it.
func udpPair(at string) (r, s int) {
	r = sock(unix.AF_INET, unix.SOCK_DGRAM)
	must(unix.Bind(r, sa(ap(at))), "bind")
	return r, sock(unix.AF_INET, unix.SOCK_DGRAM)
}

// udpSegment is a UDP_SEGMENT control message asking for segments of size bytes.
func udpSegment(size uint16) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = size
	return b
}
