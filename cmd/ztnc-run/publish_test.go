package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ztnc/ztnc/netstack"
)

func TestParsePublish(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // String() of the result, or "" for an error
	}{
		{"8080:80", ":8080->80/tcp"},
		{"8080:80/tcp", ":8080->80/tcp"},
		{"5353:53/UDP", ":5353->53/udp"},
		{"127.0.0.1:8080:80", "127.0.0.1:8080->80/tcp"},
		{"[::1]:8080:80/udp", "[::1]:8080->80/udp"},
		{"[::]:1:65535", "[::]:1->65535/tcp"},
		{"::1:8080:80", ""},
		{"80", ""},
		{"0:80", ""},
		{"8080:65536", ""},
		{"8080:80/sctp", ""},
		{"example.com:8080:80", ""},
		{"[::1:8080:80", ""},
		{"[fe80::1%eth0]:8080:80", ""},
		{"a:b", ""},
	} {
		p, err := parsePublish(c.in)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("%q: accepted as %s", c.in, p)
		case c.want != "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.want != "" && p.String() != c.want:
			t.Errorf("%q: %s, want %s", c.in, p, c.want)
		}
	}
}

func TestParseAllowHost(t *testing.T) {
	for _, c := range []struct {
		in     string
		prefix string
		port   uint16
	}{
		{"192.0.2.0/24", "192.0.2.0/24", 0},
		{"192.0.2.7", "192.0.2.7/32", 0},
		{"192.0.2.7:5432", "192.0.2.7/32", 5432},
		{"192.0.2.9/24:443", "192.0.2.0/24", 443},
		{"2001:db8::/32", "2001:db8::/32", 0},
		{"[2001:db8::/32]:443", "2001:db8::/32", 443},
		{"[2001:db8::1]", "2001:db8::1/128", 0},
		{"192.0.2.7:0", "", 0},
		{"[2001:db8::/32]443", "", 0},
		{"nowhere", "", 0},
	} {
		r, err := parseAllowHost(c.in)
		if c.prefix == "" {
			if err == nil {
				t.Errorf("%q: accepted as %+v", c.in, r)
			}
			continue
		}
		if err != nil || r.prefix.String() != c.prefix || r.port != c.port {
			t.Errorf("%q: %v %d %v, want %s %d", c.in, r.prefix, r.port, err, c.prefix, c.port)
		}
	}
}

// localStack is a stack with 10.9.0.1/24 on a hub, as --local makes.
func localStack(t *testing.T) *netstack.Stack {
	t.Helper()
	st, err := netstack.New(netstack.NewHub().NewPort(localMAC, localMTU), netstack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.SetAddresses([]netip.Prefix{netip.MustParsePrefix("10.9.0.1/24")}); err != nil {
		t.Fatal(err)
	}
	return st
}

// udpEcho serves a UDP endpoint of the stack at 10.9.0.1:port as a program would: each
// datagram comes back prefixed with the source port the program saw.
func udpEcho(t *testing.T, st *netstack.Stack, port uint16) {
	t.Helper()
	ep, err := st.NewUDP(false)
	if err != nil {
		t.Fatal(err)
	}
	if err := ep.Bind(netip.AddrPortFrom(netip.MustParseAddr("10.9.0.1"), port)); err != nil {
		t.Fatal(err)
	}
	wake := make(chan struct{}, 1)
	cancel := ep.Notify(netstack.EventIn, func(netstack.Events) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	done := make(chan struct{})
	t.Cleanup(func() { close(done); cancel(); ep.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, h, err := ep.ReadFrom(buf, false)
			if err == syscall.EAGAIN {
				select {
				case <-wake:
					continue
				case <-done:
					return
				}
			}
			if err != nil {
				return
			}
			ep.WriteTo(append([]byte(fmt.Sprintf("%s ", h.Remote)), buf[:n]...), h.Remote)
		}
	}()
}

// The UDP forwarder: each host client gets a flow of its own (its own source port on the
// virtual network); answers go back to the right client; idle flows end and a later
// datagram opens a new one.
func TestPublishUDPFlows(t *testing.T) {
	st := localStack(t)
	udpEcho(t, st, 53)
	if _, err := parsePublish("127.0.0.1:0:53/udp"); err == nil {
		t.Fatal("port 0 accepted")
	}
	spec := publishSpec{host: netip.MustParseAddrPort("127.0.0.1:0"), vport: 53, udp: true}
	// Idle flows end after 2 s: short for the test, long enough that a loaded machine does not
	// end one between two exchanges of a client.
	p, err := startPublisher(slog.New(slog.DiscardHandler), spec, func() *netstack.Stack { return st }, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()

	exchange := func(c net.Conn, msg string) string {
		t.Helper()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		return string(buf[:n])
	}
	var clients []net.Conn
	sources := map[string]bool{}
	for i := range 3 {
		c, err := net.Dial("udp", p.localAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		var src string
		for j := range 3 {
			msg := fmt.Sprintf("c%d m%d", i, j)
			got := exchange(c, msg)
			var from, rest string
			fmt.Sscanf(got, "%s", &from)
			rest = got[len(from)+1:]
			if rest != msg {
				t.Fatalf("answer %q to %q", got, msg)
			}
			if ap, err := netip.ParseAddrPort(from); err != nil || ap.Addr() != netip.MustParseAddr("10.9.0.1") {
				t.Fatalf("the program saw %q, want 10.9.0.1:port", from)
			}
			if j > 0 && from != src {
				t.Fatalf("client %d moved from %s to %s within a flow", i, src, from)
			}
			src = from
		}
		sources[src] = true
	}
	if len(sources) != 3 || p.flowCount() != 3 {
		t.Errorf("sources %v, %d flows: want 3", sources, p.flowCount())
	}
	deadline := time.Now().Add(20 * time.Second)
	for p.flowCount() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := p.flowCount(); n != 0 {
		t.Fatalf("%d flows after the idle timeout", n)
	}
	if got := exchange(clients[0], "again"); got[len(got)-5:] != "again" {
		t.Errorf("after expiry: %q", got)
	}
	j := p.json()
	if j.Total != 4 || j.Active != 1 || j.BytesIn == 0 || j.BytesOut == 0 {
		t.Errorf("counters %+v", j)
	}
}

// A datagram for a port without a listener is answered by nothing, counted, and the flow
// stays usable once something listens.
func TestPublishUDPNoListener(t *testing.T) {
	st := localStack(t)
	spec := publishSpec{host: netip.MustParseAddrPort("127.0.0.1:0"), vport: 54, udp: true}
	p, err := startPublisher(slog.New(slog.DiscardHandler), spec, func() *netstack.Stack { return st }, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("udp", p.localAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("lost"))
	deadline := time.Now().Add(20 * time.Second)
	for p.json().Drops["refused"] == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if d := p.json().Drops; d["refused"] != 1 {
		t.Fatalf("drops %v, want refused 1", d)
	}
	udpEcho(t, st, 54)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte("found"))
	buf := make([]byte, 100)
	if n, err := c.Read(buf); err != nil || string(buf[n-5:n]) != "found" {
		t.Fatalf("%q %v", buf[:n], err)
	}
}

// Without a network address (before the network is up) connections are closed at once.
func TestPublishTCPNoNetwork(t *testing.T) {
	spec := publishSpec{host: netip.MustParseAddrPort("127.0.0.1:0"), vport: 80}
	p, err := startPublisher(slog.New(slog.DiscardHandler), spec, func() *netstack.Stack { return nil }, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("tcp", p.localAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("read %d %v, want end of file or reset", n, err)
	}
	if d := p.json().Drops; d["no-network"] != 1 {
		t.Errorf("drops %v", d)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Closing a publisher ends the connections it forwards, even idle ones whose client never
// closes: ztnc-run's exit never waits for a host client.
func TestPublishCloseEndsConnections(t *testing.T) {
	st := localStack(t)
	ln, err := st.NewTCP(false)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ln.Bind(netip.MustParseAddrPort("10.9.0.1:80")); err != nil {
		t.Fatal(err)
	}
	if err := ln.Listen(8); err != nil {
		t.Fatal(err)
	}
	spec := publishSpec{host: netip.MustParseAddrPort("127.0.0.1:0"), vport: 80}
	p, err := startPublisher(slog.New(slog.DiscardHandler), spec, func() *netstack.Stack { return st }, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.localAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for p.json().Active != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a := p.json().Active; a != 1 {
		t.Fatalf("%d active connections", a)
	}
	closed := make(chan struct{})
	go func() { p.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("close waits for an idle host connection")
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("host connection after close: read %d, %v", n, err)
	}
}
