package netstack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newUDP(t testing.TB, s *Stack, v6 bool, bind string) *DatagramEndpoint {
	t.Helper()
	e, err := s.NewUDP(v6)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	if bind != "" {
		if err := e.Bind(ap(bind)); err != nil {
			t.Fatalf("bind %s: %v", bind, err)
		}
	}
	return e
}

// recvDatagram waits for a datagram on e.
func recvDatagram(t testing.TB, e *DatagramEndpoint) ([]byte, DatagramHeader) {
	t.Helper()
	buf := make([]byte, 70000)
	for {
		n, total, h, err := e.ReadFrom(buf, false)
		if err == nil {
			if total != n {
				t.Fatalf("datagram of %d bytes truncated to %d", total, n)
			}
			return buf[:n], h
		}
		if !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("ReadFrom: %v", err)
		}
		waitEvents(t, e, EventIn, 5*time.Second)
	}
}

func TestUDPExchange(t *testing.T) {
	for _, tc := range []struct {
		name       string
		serverV6   bool
		bind       string
		clientV6   bool
		to         string
		wantFrom   string // the client as the server sees it (port checked separately)
		wantLocal  string
		clientSees string // the server as the client sees it
	}{
		{name: "v4", bind: "0.0.0.0:53", to: "192.0.2.2:53", wantFrom: "192.0.2.1", wantLocal: "192.0.2.2", clientSees: "192.0.2.2:53"},
		{name: "v6", serverV6: true, bind: "[::]:53", clientV6: true, to: "[2001:db8::2]:53", wantFrom: "2001:db8::1", wantLocal: "2001:db8::2", clientSees: "[2001:db8::2]:53"},
		{name: "v4 to dual-stack", serverV6: true, bind: "[::]:53", to: "192.0.2.2:53", wantFrom: "::ffff:192.0.2.1", wantLocal: "::ffff:192.0.2.2", clientSees: "192.0.2.2:53"},
		{name: "v4-mapped from dual-stack", bind: "192.0.2.2:53", clientV6: true, to: "[::ffff:192.0.2.2]:53", wantFrom: "192.0.2.1", wantLocal: "192.0.2.2", clientSees: "[::ffff:192.0.2.2]:53"},
		{name: "link-local", serverV6: true, bind: "[::]:53", clientV6: true, to: "LL", wantFrom: "fe80::ff:fe00:1%2", wantLocal: "fe80::ff:fe00:2", clientSees: "LL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t)
			srv := newUDP(t, n.b, tc.serverV6, tc.bind)
			cli := newUDP(t, n.a, tc.clientV6, "")
			to := tc.to
			if to == "LL" {
				to = netip.AddrPortFrom(n.b.LinkLocal(), 53).String()
			}
			if _, err := cli.WriteTo([]byte("query"), ap(to)); err != nil {
				t.Fatal(err)
			}
			msg, h := recvDatagram(t, srv)
			if string(msg) != "query" {
				t.Fatalf("got %q", msg)
			}
			if h.Remote.Addr().String() != tc.wantFrom || h.Remote.Port() != cli.LocalAddr().Port() {
				t.Errorf("from %v, want %s port %d", h.Remote, tc.wantFrom, cli.LocalAddr().Port())
			}
			if h.Local.String() != tc.wantLocal || h.IfIndex != uint32(LinkIndex) {
				t.Errorf("local %v if %d, want %s if %d", h.Local, h.IfIndex, tc.wantLocal, LinkIndex)
			}
			if _, err := srv.WriteTo([]byte("answer"), h.Remote); err != nil {
				t.Fatal(err)
			}
			msg, h = recvDatagram(t, cli)
			want := tc.clientSees
			if want == "LL" {
				want = netip.AddrPortFrom(n.b.LinkLocal(), 53).String()
			}
			if string(msg) != "answer" || h.Remote != ap(want) {
				t.Errorf("client got %q from %v, want from %s", msg, h.Remote, want)
			}
		})
	}
}

// seqpacketPair splices e to a new SOCK_SEQPACKET socketpair and returns the program's end
// (non-blocking, so that reads honour deadlines).
func seqpacketPair(t testing.TB, e *DatagramEndpoint) *os.File {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Splice(os.NewFile(uintptr(fds[0]), "proxy")); err != nil {
		t.Fatal(err)
	}
	unix.SetNonblock(fds[1], true)
	f := os.NewFile(uintptr(fds[1]), "program")
	t.Cleanup(func() { f.Close() })
	return f
}

// readMsg reads one message from the program's end (empty messages included, which
// os.File.Read would report as EOF).
func readMsg(t testing.TB, f *os.File) []byte {
	t.Helper()
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 70000)
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), buf)
		return rerr != unix.EAGAIN
	}); err != nil || rerr != nil {
		t.Fatalf("program read: %v %v", err, rerr)
	}
	return buf[:n]
}

func TestUDPSplice(t *testing.T) {
	n := newNet(t)
	srv := newUDP(t, n.b, true, "[::]:5000")
	srv.SetAddressHeaders(true)
	srvProg := seqpacketPair(t, srv)
	cli := newUDP(t, n.a, false, "")
	if err := cli.Connect(ap("192.0.2.2:5000")); err != nil {
		t.Fatal(err)
	}
	cliProg := seqpacketPair(t, cli)

	// The connected fast path: the program writes bare datagrams, boundaries kept, sizes
	// from empty to fragmented.
	sizes := []int{1, 0, 100, 1472, 2772, 9000, 65000}
	for i, size := range sizes {
		msg := bytes.Repeat([]byte{byte(i + 1)}, size)
		if _, err := cliProg.Write(msg); err != nil {
			t.Fatalf("write %d bytes: %v", size, err)
		}
		got := readMsg(t, srvProg)
		h, err := DecodeDatagramHeader(got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[DatagramHeaderLen:], msg) {
			t.Fatalf("size %d: got %d bytes", size, len(got)-DatagramHeaderLen)
		}
		if h.Remote != netip.AddrPortFrom(netip.MustParseAddr("::ffff:192.0.2.1"), cli.LocalAddr().Port()) {
			t.Fatalf("header remote %v", h.Remote)
		}
		// The answer goes back through WriteTo (a trapped sendto) to the header's address.
		if _, err := srv.WriteTo(msg, h.Remote); err != nil {
			t.Fatal(err)
		}
		if got := readMsg(t, cliProg); !bytes.Equal(got, msg) {
			t.Fatalf("reply size %d: got %d bytes", size, len(got))
		}
	}
	// Turning headers off delivers bare datagrams.
	srv.SetAddressHeaders(false)
	cliProg.Write([]byte("bare"))
	if got := readMsg(t, srvProg); string(got) != "bare" {
		t.Fatalf("got %q", got)
	}

	// Closing the program's end closes the endpoint and frees the port.
	srvProg.Close()
	select {
	case <-srv.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("endpoint not released after the program closed its socket")
	}
	newUDP(t, n.b, true, "[::]:5000")
}

func TestUDPConnectionRefused(t *testing.T) {
	n := newNet(t)
	t.Run("direct", func(t *testing.T) {
		c := newUDP(t, n.a, false, "")
		if err := c.Connect(ap("192.0.2.2:9")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteTo([]byte("x"), netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
		waitEvents(t, c, EventErr, 5*time.Second)
		if _, _, _, err := c.ReadFrom(make([]byte, 10), false); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("ReadFrom: %v, want ECONNREFUSED", err)
		}
	})
	t.Run("spliced", func(t *testing.T) {
		c := newUDP(t, n.a, true, "")
		if err := c.Connect(ap("[2001:db8::2]:9")); err != nil {
			t.Fatal(err)
		}
		prog := seqpacketPair(t, c)
		errc := make(chan struct{}, 1)
		cancel := c.Notify(EventErr, func(Events) {
			select {
			case errc <- struct{}{}:
			default:
			}
		})
		defer cancel()
		prog.Write([]byte("x"))
		deadline := time.After(5 * time.Second)
		for {
			if e := c.SoError(); e == syscall.ECONNREFUSED {
				break
			} else if e != 0 {
				t.Fatalf("SoError = %v", e)
			}
			select {
			case <-errc:
			case <-deadline:
				t.Fatal("no ECONNREFUSED")
			}
		}
	})
	t.Run("unconnected ignores", func(t *testing.T) {
		c := newUDP(t, n.a, false, "")
		c.WriteTo([]byte("x"), ap("192.0.2.2:9"))
		time.Sleep(50 * time.Millisecond)
		if e := c.SoError(); e != 0 {
			t.Fatalf("unconnected socket got %v", e)
		}
	})
}

func TestUDPBroadcast(t *testing.T) {
	n := newNet(t)
	srv := newUDP(t, n.b, false, "0.0.0.0:67")
	cli := newUDP(t, n.a, false, "")
	if _, err := cli.WriteTo([]byte("x"), ap("255.255.255.255:67")); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("broadcast without SO_BROADCAST: %v, want EACCES", err)
	}
	if err := cli.SetSockOpt(unix.SOL_SOCKET, unix.SO_BROADCAST, intValue(1)); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"255.255.255.255:67", "192.0.2.255:67"} {
		if _, err := cli.WriteTo([]byte(dst), ap(dst)); err != nil {
			t.Fatalf("send to %s: %v", dst, err)
		}
		msg, h := recvDatagram(t, srv)
		if string(msg) != dst || h.Remote.Addr() != addrA4.Addr() {
			t.Fatalf("got %q from %v", msg, h.Remote)
		}
	}
}

func TestUDPMulticast(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v6    bool
		group string
		join  func(g netip.Addr) (level, name int, val []byte)
	}{
		{"v4", false, "239.1.2.3", func(g netip.Addr) (int, int, []byte) {
			a := g.As4()
			return unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, append(a[:], 0, 0, 0, 0)
		}},
		{"v4 mreqn", false, "239.1.2.4", func(g netip.Addr) (int, int, []byte) {
			a := g.As4()
			return unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, binary.LittleEndian.AppendUint32(append(a[:], 0, 0, 0, 0), uint32(LinkIndex))
		}},
		{"v6", true, "ff12::1234", func(g netip.Addr) (int, int, []byte) {
			a := g.As16()
			return unix.IPPROTO_IPV6, unix.IPV6_ADD_MEMBERSHIP, binary.LittleEndian.AppendUint32(a[:], 0)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t)
			group := netip.MustParseAddr(tc.group)
			bind := "0.0.0.0:5353"
			if tc.v6 {
				bind = "[::]:5353"
			}
			srv := newUDP(t, n.b, tc.v6, bind)
			level, name, val := tc.join(group)
			if err := srv.SetSockOpt(level, name, val); err != nil {
				t.Fatalf("join: %v", err)
			}
			if err := srv.SetSockOpt(level, name, val); !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("second join: %v, want EADDRINUSE", err)
			}
			cli := newUDP(t, n.a, tc.v6, "")
			dst := netip.AddrPortFrom(group, 5353)
			if _, err := cli.WriteTo([]byte("hello"), dst); err != nil {
				t.Fatal(err)
			}
			if msg, _ := recvDatagram(t, srv); string(msg) != "hello" {
				t.Fatalf("got %q", msg)
			}
			// Leaving unsubscribes the port: the hub stops delivering the group.
			leave := unix.IP_DROP_MEMBERSHIP
			if tc.v6 {
				leave = unix.IPV6_DROP_MEMBERSHIP
			}
			if err := srv.SetSockOpt(level, leave, val); err != nil {
				t.Fatalf("leave: %v", err)
			}
			if _, ok := n.portB.groups[multicastGroup{mac: multicastMAC(group)}]; ok {
				t.Fatal("port still subscribed after leave")
			}
			before := n.b.Counters().FramesIn
			cli.WriteTo([]byte("again"), dst)
			time.Sleep(50 * time.Millisecond)
			if n.b.Counters().FramesIn != before {
				t.Fatal("frame for a left group reached the stack")
			}
		})
	}
}

func TestPing(t *testing.T) {
	echo := func(v6 bool, seq uint16, data string) []byte {
		typ := byte(8)
		if v6 {
			typ = 128
		}
		b := []byte{typ, 0, 0, 0, 0, 0, byte(seq >> 8), byte(seq)}
		return append(b, data...)
	}
	for _, tc := range []struct {
		name string
		v6   bool
		from func(n *testNet) *Stack
		to   func(n *testNet) netip.Addr
	}{
		{"v4 peer", false, func(n *testNet) *Stack { return n.a }, func(*testNet) netip.Addr { return addrB4.Addr() }},
		{"v6 peer", true, func(n *testNet) *Stack { return n.a }, func(*testNet) netip.Addr { return addrB6.Addr() }},
		{"v6 link-local", true, func(n *testNet) *Stack { return n.a }, func(n *testNet) netip.Addr { return n.b.LinkLocal() }},
		{"v4 self", false, func(n *testNet) *Stack { return n.a }, func(*testNet) netip.Addr { return addrA4.Addr() }},
		{"v6 self", true, func(n *testNet) *Stack { return n.a }, func(*testNet) netip.Addr { return addrA6.Addr() }},
		{"v4 loopback", false, func(n *testNet) *Stack { return n.a }, func(*testNet) netip.Addr { return netip.MustParseAddr("127.0.0.1") }},
		{"v6 loopback", true, func(n *testNet) *Stack { return n.a }, func(*testNet) netip.Addr { return netip.IPv6Loopback() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t)
			p, err := tc.from(n).NewPing(tc.v6)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			any := netip.IPv4Unspecified()
			if tc.v6 {
				any = netip.IPv6Unspecified()
			}
			if err := p.Bind(netip.AddrPortFrom(any, 4242)); err != nil {
				t.Fatal(err)
			}
			dst := tc.to(n)
			for seq := uint16(1); seq <= 3; seq++ {
				if _, err := p.WriteTo(echo(tc.v6, seq, "ping data"), netip.AddrPortFrom(dst, 0)); err != nil {
					t.Fatalf("send: %v", err)
				}
				reply, h := recvDatagram(t, p)
				wantType := byte(0)
				if tc.v6 {
					wantType = 129
				}
				if len(reply) != 8+9 || reply[0] != wantType || binary.BigEndian.Uint16(reply[4:6]) != 4242 ||
					binary.BigEndian.Uint16(reply[6:8]) != seq || string(reply[8:]) != "ping data" {
					t.Fatalf("reply %x", reply)
				}
				if h.Remote != netip.AddrPortFrom(dst, 0) {
					t.Fatalf("reply from %v, want %v", h.Remote, dst)
				}
			}
		})
	}
	t.Run("not an echo request", func(t *testing.T) {
		n := newNet(t)
		p, _ := n.a.NewPing(false)
		defer p.Close()
		if _, err := p.WriteTo([]byte{3, 3, 0, 0, 0, 0, 0, 0}, ap("192.0.2.2:0")); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("sending type 3: %v, want EINVAL", err)
		}
	})
	t.Run("spliced with headers", func(t *testing.T) {
		n := newNet(t)
		p, _ := n.a.NewPing(false)
		p.SetAddressHeaders(true)
		prog := seqpacketPair(t, p)
		if err := p.Connect(ap("192.0.2.2:0")); err != nil {
			t.Fatal(err)
		}
		prog.Write(echo(false, 7, "abc"))
		got := readMsg(t, prog)
		h, err := DecodeDatagramHeader(got)
		if err != nil || h.Remote != ap("192.0.2.2:0") || got[DatagramHeaderLen] != 0 || got[DatagramHeaderLen+7] != 7 {
			t.Fatalf("header %+v, %v, reply %x", h, err, got[DatagramHeaderLen:])
		}
	})
}

func TestUDPBindErrors(t *testing.T) {
	n := newNet(t)
	newUDP(t, n.a, false, "192.0.2.1:53")
	e := newUDP(t, n.a, false, "")
	if err := e.Bind(ap("192.0.2.1:53")); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("bind taken: %v", err)
	}
	if err := e.Bind(ap("192.0.2.77:53")); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("bind foreign: %v", err)
	}
	// SO_REUSEADDR on both lets two sockets share a port (as DHCP and mDNS programs do).
	r1 := newUDP(t, n.a, false, "")
	r2 := newUDP(t, n.a, false, "")
	for _, r := range []*DatagramEndpoint{r1, r2} {
		if err := r.SetSockOpt(unix.SOL_SOCKET, unix.SO_REUSEADDR, intValue(1)); err != nil {
			t.Fatal(err)
		}
		if err := r.Bind(ap("0.0.0.0:5353")); err != nil {
			t.Fatalf("bind with SO_REUSEADDR: %v", err)
		}
	}
	if _, err := e.RemoteAddr(); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("RemoteAddr: %v", err)
	}
	if err := e.Connect(ap("192.0.2.2:53")); err != nil {
		t.Fatal(err)
	}
	if got, err := e.RemoteAddr(); err != nil || got != ap("192.0.2.2:53") {
		t.Fatalf("RemoteAddr %v, %v", got, err)
	}
	if err := e.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RemoteAddr(); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("RemoteAddr after disconnect: %v", err)
	}
	if _, err := e.WriteTo([]byte("x"), netip.AddrPort{}); !errors.Is(err, syscall.EDESTADDRREQ) {
		t.Fatalf("send unconnected without address: %v, want EDESTADDRREQ", err)
	}
}

func TestDatagramSockOpt(t *testing.T) {
	n := newNet(t)
	i := intValue
	for _, tc := range []struct {
		name       string
		v6, ping   bool
		level, opt int
		set        []byte
		want       []byte
		wantSetErr error
		wantGetErr error
	}{
		{name: "type", level: unix.SOL_SOCKET, opt: unix.SO_TYPE, want: i(unix.SOCK_DGRAM)},
		{name: "protocol udp", level: unix.SOL_SOCKET, opt: unix.SO_PROTOCOL, want: i(unix.IPPROTO_UDP)},
		{name: "protocol icmpv6", v6: true, ping: true, level: unix.SOL_SOCKET, opt: unix.SO_PROTOCOL, want: i(unix.IPPROTO_ICMPV6)},
		{name: "pktinfo default", level: unix.IPPROTO_IP, opt: unix.IP_PKTINFO, want: i(0)},
		{name: "pktinfo", level: unix.IPPROTO_IP, opt: unix.IP_PKTINFO, set: i(1), want: i(1)},
		{name: "recvpktinfo v6", v6: true, level: unix.IPPROTO_IPV6, opt: unix.IPV6_RECVPKTINFO, set: i(1), want: i(1)},
		{name: "recvtos", level: unix.IPPROTO_IP, opt: unix.IP_RECVTOS, set: i(1), want: i(1)},
		{name: "multicast ttl default", level: unix.IPPROTO_IP, opt: unix.IP_MULTICAST_TTL, want: i(1)},
		{name: "multicast ttl", level: unix.IPPROTO_IP, opt: unix.IP_MULTICAST_TTL, set: []byte{5}, want: i(5)},
		{name: "multicast loop default", level: unix.IPPROTO_IP, opt: unix.IP_MULTICAST_LOOP, want: i(1)},
		{name: "multicast hops v6", v6: true, level: unix.IPPROTO_IPV6, opt: unix.IPV6_MULTICAST_HOPS, set: i(7), want: i(7)},
		{name: "broadcast", level: unix.SOL_SOCKET, opt: unix.SO_BROADCAST, set: i(1), want: i(1)},
		{name: "rcvbuf", level: unix.SOL_SOCKET, opt: unix.SO_RCVBUF, set: i(100000), want: i(200000)},
		{name: "join non-multicast", level: unix.IPPROTO_IP, opt: unix.IP_ADD_MEMBERSHIP, set: []byte{10, 0, 0, 1, 0, 0, 0, 0}, wantSetErr: syscall.EINVAL, wantGetErr: syscall.ENOPROTOOPT},
		{name: "ipv6 level on v4", level: unix.IPPROTO_IPV6, opt: unix.IPV6_RECVPKTINFO, set: i(1), wantSetErr: syscall.ENOPROTOOPT, wantGetErr: syscall.ENOPROTOOPT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *DatagramEndpoint
			var err error
			if tc.ping {
				e, err = n.a.NewPing(tc.v6)
			} else {
				e, err = n.a.NewUDP(tc.v6)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if tc.set != nil {
				if err := e.SetSockOpt(tc.level, tc.opt, tc.set); !errors.Is(err, tc.wantSetErr) || (tc.wantSetErr == nil && err != nil) {
					t.Fatalf("set: %v, want %v", err, tc.wantSetErr)
				}
			}
			got, err := e.GetSockOpt(tc.level, tc.opt)
			if !errors.Is(err, tc.wantGetErr) || (tc.wantGetErr == nil && err != nil) {
				t.Fatalf("get: %v, want %v", err, tc.wantGetErr)
			}
			if tc.want != nil && !bytes.Equal(got, tc.want) {
				t.Fatalf("get = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDatagramHeader(t *testing.T) {
	for _, h := range []DatagramHeader{
		{Remote: ap("192.0.2.1:53"), Local: netip.MustParseAddr("192.0.2.2"), IfIndex: 2, TOS: 0x10, HasTOS: true},
		{Remote: ap("[2001:db8::1]:5353"), Local: netip.MustParseAddr("ff02::fb"), IfIndex: 2, TTL: 255, HasTTL: true},
		{Remote: ap("[fe80::1%2]:546"), IfIndex: 2},
		{Remote: ap("[::ffff:192.0.2.1]:53"), Local: netip.MustParseAddr("::ffff:192.0.2.2")},
		{Remote: ap("0.0.0.0:0")},
	} {
		var b [DatagramHeaderLen]byte
		h.Encode(b[:])
		got, err := DecodeDatagramHeader(b[:])
		if err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		if h.Remote.Addr().Is6() && h.Remote.Addr().Zone() == "" && got.Remote.Addr().Zone() != "" {
			got.Remote = netip.AddrPortFrom(got.Remote.Addr().WithZone(""), got.Remote.Port())
		}
		if got != h {
			t.Errorf("round trip %+v → %+v", h, got)
		}
	}
	if _, err := DecodeDatagramHeader(make([]byte, DatagramHeaderLen-1)); err == nil {
		t.Error("short header accepted")
	}
	bad := make([]byte, DatagramHeaderLen)
	bad[0] = 1
	bad[8] = 1 // IPv4 address with bytes beyond 4
	if _, err := DecodeDatagramHeader(bad); err == nil {
		t.Error("bad IPv4 padding accepted")
	}
}

// FuzzDatagramHeader: decoding never panics, and whatever decodes re-encodes to the same
// bytes.
func FuzzDatagramHeader(f *testing.F) {
	var b [DatagramHeaderLen]byte
	h := DatagramHeader{Remote: ap("[fe80::1%2]:546"), Local: netip.MustParseAddr("fe80::2"), IfIndex: 2, HasTTL: true, TTL: 1}
	h.Encode(b[:])
	f.Add(b[:])
	h = DatagramHeader{Remote: ap("192.0.2.1:53"), HasTOS: true, TOS: 4}
	h.Encode(b[:])
	f.Add(b[:])
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := DecodeDatagramHeader(data)
		if err != nil {
			return
		}
		var out [DatagramHeaderLen]byte
		h.Encode(out[:])
		if !bytes.Equal(out[:], data[:DatagramHeaderLen]) {
			t.Fatalf("re-encoded %x, decoded from %x", out, data[:DatagramHeaderLen])
		}
	})
}

func TestDatagramSpliceLifecycle(t *testing.T) {
	fdsBefore := countFDs(t)
	hub := NewHub()
	pa := hub.NewPort(testMAC(1), testMTU)
	a, err := New(pa, Config{})
	if err != nil {
		t.Fatal(err)
	}
	a.SetAddresses([]netip.Prefix{addrA4})
	// SOCK_DGRAM: the proxy cannot see the program close; Close releases it.
	d := newUDP(t, a, false, "0.0.0.0:7000")
	fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err := d.Splice(os.NewFile(uintptr(fds[0]), "proxy")); err != nil {
		t.Fatal(err)
	}
	// A copy: Splice closes what it refuses, and fds[0] is the running proxy's.
	again, _ := unix.Dup(fds[0])
	if err := d.Splice(os.NewFile(uintptr(again), "again")); !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.ENOTSOCK) {
		t.Fatalf("second splice: %v", err)
	}
	d.Close()
	<-d.Done()
	unix.Close(fds[1])
	// A stream socket is refused.
	s, _ := a.NewUDP(false)
	sfds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err := s.Splice(os.NewFile(uintptr(sfds[0]), "stream")); !errors.Is(err, syscall.ENOTSOCK) {
		t.Fatalf("splice stream socket: %v", err)
	}
	unix.Close(sfds[1])
	s.Close()
	// Stack close ends running proxies.
	var progs []*os.File
	for range 3 {
		u := newUDP(t, a, false, "")
		u.Connect(ap("192.0.2.1:7000"))
		progs = append(progs, seqpacketPair(t, u))
		p, _ := a.NewPing(false)
		progs = append(progs, seqpacketPair(t, p))
	}
	a.Close()
	pa.Close()
	for _, p := range progs {
		p.Close()
	}
	checkNoLeaks(t, fdsBefore)
}

// TestUDPWriteMsg: a server with two IPv6 addresses answers from the one it was asked on, and
// a TTL given per datagram reaches the receiver.
func TestUDPWriteMsg(t *testing.T) {
	n := newNet(t)
	second := netip.MustParsePrefix("fd00:1::2/64")
	if err := n.b.SetAddresses([]netip.Prefix{addrB4, addrB6, second}); err != nil {
		t.Fatal(err)
	}
	if err := n.a.SetAddresses([]netip.Prefix{addrA4, addrA6, netip.MustParsePrefix("fd00:1::1/64")}); err != nil {
		t.Fatal(err)
	}
	srv := newUDP(t, n.b, true, "[::]:53")
	cli := newUDP(t, n.a, true, "")
	if err := cli.SetSockOpt(unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, intValue(1)); err != nil {
		t.Fatal(err)
	}
	cli.WriteTo([]byte("q"), netip.AddrPortFrom(second.Addr(), 53))
	_, h := recvDatagram(t, srv)
	if h.Local != second.Addr() {
		t.Fatalf("query arrived at %v", h.Local)
	}
	if _, err := srv.WriteMsg([]byte("a"), h.Remote, SendOptions{From: h.Local, TTL: 7}); err != nil {
		t.Fatal(err)
	}
	_, rh := recvDatagram(t, cli)
	if rh.Remote.Addr() != second.Addr() || !rh.HasTTL || rh.TTL != 7 {
		t.Fatalf("answer from %v ttl %d (%v)", rh.Remote, rh.TTL, rh.HasTTL)
	}
}

// As on Linux, the unspecified address as a destination (sendto, connect) means the socket's
// own bound address, or loopback if it has none.
func TestUDPUnspecifiedDestination(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		v6                   bool
		bind, clientBind, to string
		wantTo               string
	}{
		{name: "v4", bind: "127.0.0.1:53", to: "0.0.0.0:53", wantTo: "127.0.0.1:53"},
		{name: "v6", v6: true, bind: "[::1]:53", to: "[::]:53", wantTo: "[::1]:53"},
		{name: "v4 bound", bind: "0.0.0.0:53", clientBind: "192.0.2.1:0", to: "0.0.0.0:53", wantTo: "192.0.2.1:53"},
		{name: "v6 bound", v6: true, bind: "[::]:53", clientBind: "[2001:db8::1]:0", to: "[::]:53", wantTo: "[2001:db8::1]:53"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t)
			srv := newUDP(t, n.a, tc.v6, tc.bind)
			cli := newUDP(t, n.a, tc.v6, tc.clientBind)
			if _, err := cli.WriteTo([]byte("sendto"), ap(tc.to)); err != nil {
				t.Fatal(err)
			}
			if msg, h := recvDatagram(t, srv); string(msg) != "sendto" || h.Local != ap(tc.wantTo).Addr() {
				t.Fatalf("got %q at %v, want at %s", msg, h.Local, tc.wantTo)
			}
			if err := cli.Connect(ap(tc.to)); err != nil {
				t.Fatal(err)
			}
			if got, err := cli.RemoteAddr(); err != nil || got != ap(tc.wantTo) {
				t.Errorf("RemoteAddr after connect to %s = %v, %v; want %s", tc.to, got, err, tc.wantTo)
			}
			if _, err := cli.WriteTo([]byte("connected"), netip.AddrPort{}); err != nil {
				t.Fatal(err)
			}
			if msg, _ := recvDatagram(t, srv); string(msg) != "connected" {
				t.Fatalf("got %q", msg)
			}
		})
	}
}

// Connecting to a broadcast address needs SO_BROADCAST first, as on Linux (EACCES).
func TestUDPConnectBroadcast(t *testing.T) {
	n := newNet(t) // 192.0.2.1/24 on a
	for _, tc := range []struct {
		to   string
		want error
	}{
		{"192.0.2.255:9", syscall.EACCES},
		{"255.255.255.255:9", syscall.EACCES},
		{"192.0.2.254:9", nil},
		{"198.51.100.255:9", syscall.ENETUNREACH}, // not a broadcast address of ours: no route
	} {
		e := newUDP(t, n.a, false, "")
		if err := e.Connect(ap(tc.to)); !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("connect %s: %v, want %v", tc.to, err, tc.want)
		}
		if tc.want != syscall.EACCES {
			continue
		}
		if err := e.SetSockOpt(unix.SOL_SOCKET, unix.SO_BROADCAST, intValue(1)); err != nil {
			t.Fatal(err)
		}
		if err := e.Connect(ap(tc.to)); err != nil {
			t.Errorf("connect %s with SO_BROADCAST: %v", tc.to, err)
		}
	}
}
