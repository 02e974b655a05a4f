package netstack

import (
	"bytes"
	"errors"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

func TestTCPConnectAccept(t *testing.T) {
	for _, tc := range []struct {
		name       string
		listen     string // on stack b, or on a when local
		listenV6   bool
		dial       string
		dialV6     bool
		local      bool   // connect from a to itself
		wantClient string // the client's view of the server (RemoteAddr), "" = dial
		wantServer string // prefix the server sees the client under
	}{
		{name: "v4", listen: "192.0.2.2:80", dial: "192.0.2.2:80", wantServer: "192.0.2.1:"},
		{name: "v6", listen: "[2001:db8::2]:80", listenV6: true, dial: "[2001:db8::2]:80", dialV6: true, wantServer: "[2001:db8::1]:"},
		{name: "v4 to dual-stack", listen: "[::]:80", listenV6: true, dial: "192.0.2.2:80", wantServer: "[::ffff:192.0.2.1]:"},
		{name: "v4-mapped from dual-stack", listen: "0.0.0.0:80", dial: "[::ffff:192.0.2.2]:80", dialV6: true, wantServer: "192.0.2.1:"},
		{name: "any v4", listen: "0.0.0.0:81", dial: "192.0.2.2:81", wantServer: "192.0.2.1:"},
		{name: "loopback v4", listen: "127.0.0.1:80", dial: "127.0.0.1:80", local: true, wantServer: "127.0.0.1:"},
		// gVisor uses the destination as source within 127.0.0.0/8 (Linux: 127.0.0.1).
		{name: "loopback subnet", listen: "127.0.0.5:80", dial: "127.0.0.5:80", local: true, wantServer: "127.0.0.5:"},
		{name: "loopback any", listen: "0.0.0.0:83", dial: "127.1.2.3:83", local: true, wantServer: "127.1.2.3:"},
		{name: "loopback v6", listen: "[::1]:80", listenV6: true, dial: "[::1]:80", dialV6: true, local: true, wantServer: "[::1]:"},
		{name: "own address", listen: "192.0.2.1:80", dial: "192.0.2.1:80", local: true, wantServer: "192.0.2.1:"},
		{name: "unspecified is loopback", listen: "127.0.0.1:82", dial: "0.0.0.0:82", local: true, wantClient: "127.0.0.1:82", wantServer: "127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t)
			srv := n.b
			if tc.local {
				srv = n.a
			}
			l, err := srv.NewTCP(tc.listenV6)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.Bind(ap(tc.listen)); err != nil {
				t.Fatal(err)
			}
			if err := l.Listen(16); err != nil {
				t.Fatal(err)
			}
			c := dialTCP(t, n.a, tc.dialV6, ap(tc.dial))
			s := acceptTCP(t, l)
			want := tc.wantClient
			if want == "" {
				want = tc.dial
			}
			if got, err := c.RemoteAddr(); err != nil || got != ap(want) {
				t.Errorf("client RemoteAddr = %v, %v; want %v", got, err, want)
			}
			got, err := s.RemoteAddr()
			if err != nil || !stringsHasPrefix(got.String(), tc.wantServer) {
				t.Errorf("server RemoteAddr = %v, %v; want %s*", got, err, tc.wantServer)
			}
			if s.LocalAddr().Port() != ap(tc.listen).Port() || c.LocalAddr().Addr().Unmap() != got.Addr().Unmap() || c.LocalAddr().Port() != got.Port() {
				t.Errorf("LocalAddr: server %v, client %v (server sees %v)", s.LocalAddr(), c.LocalAddr(), got)
			}
			if st := c.State(); st != 1 {
				t.Errorf("client state %d, want TCP_ESTABLISHED", st)
			}
		})
	}
}

func stringsHasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func TestTCPConnectErrors(t *testing.T) {
	n := newNet(t)
	t.Run("refused", func(t *testing.T) {
		if _, e := connectTCP(t, n.a, false, ap("192.0.2.2:9")); e != syscall.ECONNREFUSED {
			t.Fatalf("got %v, want ECONNREFUSED", e)
		}
	})
	t.Run("refused v6", func(t *testing.T) {
		if _, e := connectTCP(t, n.a, true, ap("[2001:db8::2]:9")); e != syscall.ECONNREFUSED {
			t.Fatalf("got %v, want ECONNREFUSED", e)
		}
	})
	t.Run("refused loopback", func(t *testing.T) {
		if _, e := connectTCP(t, n.a, false, ap("127.0.0.1:9")); e != syscall.ECONNREFUSED {
			t.Fatalf("got %v, want ECONNREFUSED", e)
		}
	})
	t.Run("v4-mapped on v6only", func(t *testing.T) {
		e, err := n.a.NewTCP(true)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if err := e.SetSockOpt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, intValue(1)); err != nil {
			t.Fatal(err)
		}
		if err := e.Connect(ap("[::ffff:192.0.2.2]:9")); err != syscall.ENETUNREACH {
			t.Fatalf("got %v, want ENETUNREACH", err)
		}
	})
	t.Run("network unreachable", func(t *testing.T) {
		if _, e := connectTCP(t, n.a, false, ap("198.51.100.1:80")); e != syscall.ENETUNREACH {
			t.Fatalf("got %v, want ENETUNREACH", e)
		}
	})
	t.Run("host unreachable", func(t *testing.T) {
		t.Parallel()
		// Nobody answers ARP for .99: gVisor gives up after 3 probes a second apart.
		if _, e := connectTCP(t, n.a, false, ap("192.0.2.99:80")); e != syscall.EHOSTUNREACH {
			t.Fatalf("got %v, want EHOSTUNREACH", e)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		// The peer vanishes (its port leaves the hub) while data is outstanding:
		// TCP_USER_TIMEOUT turns the retransmissions into ETIMEDOUT.
		n := newNet(t)
		l := listenTCP(t, n.b, ap("192.0.2.2:80"))
		c := dialTCP(t, n.a, false, ap("192.0.2.2:80"))
		acceptTCP(t, l)
		if err := c.SetSockOpt(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, intValue(500)); err != nil {
			t.Fatal(err)
		}
		n.portB.Close()
		prog := spliceConn(t, c)
		if _, err := prog.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-time.After(20 * time.Second):
			t.Fatal("spliced connection did not end")
		}
		if err := c.Err(); !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("Err() = %v, want ETIMEDOUT", err)
		}
		// Linux fails the read with ETIMEDOUT; a socketpair can only fail it with
		// ECONNRESET, which says as much: the connection broke (SO_ERROR is precise).
		prog.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := prog.Read(make([]byte, 10)); n != 0 || !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("program read %d, %v; want ECONNRESET", n, err)
		}
	})
	t.Run("again", func(t *testing.T) {
		l := listenTCP(t, n.b, ap("192.0.2.2:7"))
		c, err := n.a.NewTCP(false)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Connect(ap("192.0.2.2:7")); !errors.Is(err, syscall.EINPROGRESS) {
			t.Fatal(err)
		}
		if err := c.Connect(ap("192.0.2.2:7")); !errors.Is(err, syscall.EALREADY) && !errors.Is(err, syscall.EISCONN) {
			t.Fatalf("second connect: %v, want EALREADY", err)
		}
		waitEvents(t, c, EventOut, 5*time.Second)
		// Linux reports success to the first connect after a non-blocking one completed,
		// EISCONN afterwards.
		if err := c.Connect(ap("192.0.2.2:7")); err != nil {
			t.Fatalf("connect after completion: %v, want success", err)
		}
		if err := c.Connect(ap("192.0.2.2:7")); !errors.Is(err, syscall.EISCONN) {
			t.Fatalf("connect when connected: %v, want EISCONN", err)
		}
		acceptTCP(t, l)
	})
}

func TestTCPBindListenErrors(t *testing.T) {
	n := newNet(t)
	newEP := func(v6 bool) *TCPEndpoint {
		e, err := n.a.NewTCP(v6)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		return e
	}
	l := listenTCP(t, n.a, ap("192.0.2.1:80"))
	_ = l
	for _, tc := range []struct {
		name  string
		v6    bool
		setup func(*TCPEndpoint)
		addr  string
		want  error
	}{
		{name: "in use", addr: "192.0.2.1:80", want: syscall.EADDRINUSE},
		{name: "in use via any", addr: "0.0.0.0:80", want: syscall.EADDRINUSE},
		{name: "not ours", addr: "192.0.2.7:80", want: syscall.EADDRNOTAVAIL},
		{name: "v6 on v4 socket", addr: "[2001:db8::1]:80", want: syscall.EAFNOSUPPORT},
		{name: "link-local without scope", v6: true, addr: "[fe80::1]:80", want: syscall.EINVAL},
		{name: "ephemeral", addr: "192.0.2.1:0"},
		{name: "other port", addr: "192.0.2.1:81"},
		{name: "v6 address", v6: true, addr: "[2001:db8::1]:84"},
		{name: "dual-stack collides", v6: true, addr: "[::]:80", want: syscall.EADDRINUSE},
		{name: "v6only avoids collision", v6: true, setup: func(e *TCPEndpoint) {
			if err := e.SetSockOpt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, intValue(1)); err != nil {
				t.Fatal(err)
			}
		}, addr: "[::]:80"},
		{name: "v6only refuses v4-mapped", v6: true, setup: func(e *TCPEndpoint) {
			if err := e.SetSockOpt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, intValue(1)); err != nil {
				t.Fatal(err)
			}
		}, addr: "[::ffff:192.0.2.1]:85", want: syscall.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEP(tc.v6)
			if tc.setup != nil {
				tc.setup(e)
			}
			err := e.Bind(ap(tc.addr))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("bind %s: %v, want %v", tc.addr, err, tc.want)
			}
			if err == nil && e.LocalAddr().Port() == 0 {
				t.Fatalf("bound to port 0")
			}
		})
	}
	t.Run("bind twice", func(t *testing.T) {
		e := newEP(false)
		if err := e.Bind(ap("192.0.2.1:0")); err != nil {
			t.Fatal(err)
		}
		if err := e.Bind(ap("192.0.2.1:0")); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("second bind: %v, want EINVAL", err)
		}
	})
	t.Run("reuseaddr after close", func(t *testing.T) {
		// A listener that accepted and closed a connection leaves TIME_WAIT behind;
		// SO_REUSEADDR lets a new listener bind the port anyway.
		l, err := n.a.NewTCP(false)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.SetSockOpt(unix.SOL_SOCKET, unix.SO_REUSEADDR, intValue(1)); err != nil {
			t.Fatal(err)
		}
		if err := l.Bind(ap("192.0.2.1:90")); err != nil {
			t.Fatal(err)
		}
		if err := l.Listen(1); err != nil {
			t.Fatal(err)
		}
		c := dialTCP(t, n.b, false, ap("192.0.2.1:90"))
		s := acceptTCP(t, l)
		s.Close() // server closes first: TIME_WAIT on a
		waitEvents(t, c, EventIn, 5*time.Second)
		c.Close()
		l.Close()
		time.Sleep(50 * time.Millisecond)
		e := newEP(false)
		if err := e.SetSockOpt(unix.SOL_SOCKET, unix.SO_REUSEADDR, intValue(1)); err != nil {
			t.Fatal(err)
		}
		if err := e.Bind(ap("192.0.2.1:90")); err != nil {
			t.Fatalf("bind with SO_REUSEADDR: %v", err)
		}
	})
	t.Run("accept not listening", func(t *testing.T) {
		e := newEP(false)
		if _, err := e.Accept(); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("accept: %v, want EINVAL", err)
		}
	})
	t.Run("accept nothing pending", func(t *testing.T) {
		if _, err := l.Accept(); !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("accept: %v, want EAGAIN", err)
		}
	})
	t.Run("getpeername unconnected", func(t *testing.T) {
		e := newEP(true)
		if _, err := e.RemoteAddr(); !errors.Is(err, syscall.ENOTCONN) {
			t.Fatalf("RemoteAddr: %v, want ENOTCONN", err)
		}
		if got := e.LocalAddr(); got != ap("[::]:0") {
			t.Fatalf("LocalAddr of unbound v6 = %v", got)
		}
	})
	t.Run("shutdown unconnected", func(t *testing.T) {
		e := newEP(false)
		if err := e.Shutdown(unix.SHUT_WR); !errors.Is(err, syscall.ENOTCONN) {
			t.Fatalf("shutdown: %v, want ENOTCONN", err)
		}
		if err := e.Shutdown(7); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("shutdown(7): %v, want EINVAL", err)
		}
	})
}

// ackDropPort is a Port that loses every pure TCP ACK it is asked to send while drop is set.
type ackDropPort struct {
	Port
	drop atomic.Bool
}

func (p *ackDropPort) WriteFrame(dst, src [6]byte, etherType uint16, payload []byte) error {
	if p.drop.Load() && etherType == uint16(header.IPv4ProtocolNumber) && len(payload) >= header.IPv4MinimumSize {
		ip := header.IPv4(payload)
		if ip.TransportProtocol() == header.TCPProtocolNumber && int(ip.HeaderLength()) <= len(payload) {
			seg := header.TCP(ip.Payload())
			if len(seg) >= header.TCPMinimumSize && seg.Flags() == header.TCPFlagAck && int(seg.DataOffset()) == len(seg) {
				return nil
			}
		}
	}
	return p.Port.WriteFrame(dst, src, etherType, payload)
}

// TestNoNagleHold: a short write that follows one still unacknowledged goes out at once,
// whatever TCP_NODELAY says. With gVisor's Nagle (classic: any unacknowledged data holds a
// short segment) the second half of a response written in two parts waited for the peer's
// delayed ACK; here the peer's ACKs are lost, so a held write would never arrive.
func TestNoNagleHold(t *testing.T) {
	hub := NewHub()
	pa := &ackDropPort{Port: hub.NewPort(testMAC(1), testMTU)}
	a, err := New(pa, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); pa.Port.(*HubPort).Close() })
	if err := a.SetAddresses([]netip.Prefix{addrA4}); err != nil {
		t.Fatal(err)
	}
	b, _ := newStackPort(t, hub, 2, Config{}, addrB4)
	n := &testNet{hub: hub, a: a, b: b}
	client, server, _, sep := n.splicedPair(t, false, 80)
	if v, err := sep.GetSockOpt(unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || !bytes.Equal(v, intValue(0)) {
		t.Fatalf("TCP_NODELAY of the accepted socket = %v, %v; want 0 as on Linux", v, err)
	}

	pa.drop.Store(true)
	buf := make([]byte, 64)
	for _, part := range []string{"HTTP/1.1 200 OK\r\n\r\n", "body"} {
		if _, err := server.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
		client.SetReadDeadline(time.Now().Add(20 * time.Second))
		got := 0
		for got < len(part) {
			n, err := client.Read(buf[got:len(part)])
			if err != nil {
				t.Fatalf("reading %q (ACKs from the reader lost): %v", part, err)
			}
			got += n
		}
		if string(buf[:got]) != part {
			t.Fatalf("read %q, want %q", buf[:got], part)
		}
	}
}

// TestAcceptInherits: as on Linux, a connection accepted from a listener with TCP_NODELAY or
// TCP_CORK set has it set.
func TestAcceptInherits(t *testing.T) {
	n := newNet(t)
	port := uint16(8000)
	for _, name := range []int{unix.TCP_NODELAY, unix.TCP_CORK} {
		for _, on := range []int32{0, 1} {
			port++
			dst := netip.AddrPortFrom(addrB4.Addr(), port)
			l := listenTCP(t, n.b, dst)
			if err := l.SetSockOpt(unix.IPPROTO_TCP, name, intValue(on)); err != nil {
				t.Fatal(err)
			}
			dialTCP(t, n.a, false, dst)
			c := acceptTCP(t, l)
			if v, err := c.GetSockOpt(unix.IPPROTO_TCP, name); err != nil || !bytes.Equal(v, intValue(on)) {
				t.Errorf("listener option %d = %d: accepted socket reads %v, %v", name, on, v, err)
			}
			if got := c.ep.SocketOptions().GetCorkOption(); name == unix.TCP_CORK && got != (on == 1) {
				t.Errorf("listener TCP_CORK %d: accepted endpoint corked %v", on, got)
			}
		}
	}
}

// A burst of connections against a small backlog completes at once: the stack handles the
// SYNs before anyone can accept, and a queue of only backlog+1 dropped the rest, whose
// clients retried a second later and then three, together again. (The program's own queue,
// in the supervisor, still holds backlog+1.)
func TestListenBurstAboveBacklog(t *testing.T) {
	n := newNet(t)
	listenTCPBacklog(t, n.b, ap("192.0.2.2:80"), 9)
	var conns []*TCPEndpoint
	for range 100 {
		c, err := n.a.NewTCP(false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if err := c.Connect(ap("192.0.2.2:80")); !errors.Is(err, syscall.EINPROGRESS) && err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		// Nothing accepts: with a queue of backlog+1 the rest would never connect.
		waitEvents(t, c, EventOut|EventErr|EventHUp, 10*time.Second)
		if e := c.SoError(); e != 0 {
			t.Fatalf("connection %d: %v", i, e)
		}
	}
}

// listen(fd, 0) still takes a connection, as on Linux, which queues one more than the backlog.
func TestListenBacklogZero(t *testing.T) {
	n := newNet(t)
	l := listenTCPBacklog(t, n.b, ap("192.0.2.2:80"), 0)
	dialTCP(t, n.a, false, ap("192.0.2.2:80"))
	acceptTCP(t, l)
}
