package netstack

import (
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

func TestStackRoutable(t *testing.T) {
	n := newNet(t)
	if err := n.a.SetRoutes([]Route{
		{Dst: netip.MustParsePrefix("198.51.100.0/24"), Via: netip.MustParseAddr("192.0.2.2")},
		{Dst: netip.MustParsePrefix("2001:db8:1::/48"), Via: netip.MustParseAddr("2001:db8::2")},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"192.0.2.1", true},
		{"192.0.2.200", true},
		{"::ffff:192.0.2.9", true},
		{"192.0.3.1", false},
		{"198.51.100.7", true},
		{"203.0.113.1", false},
		{"127.0.0.1", true},
		{"127.5.5.5", true},
		{"::1", true},
		{"2001:db8::77", true},
		{"2001:db8:1:2::1", true},
		{"2001:db8:2::1", false},
		{"fe80::1%2", true},
		{"224.0.0.251", true},
		{"ff02::fb", true},
		{"255.255.255.255", true},
		{"8.8.8.8", false},
		{"2606:4700::1111", false},
	} {
		if got := n.a.Routable(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Routable(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	// A gatewayed route works end to end: b owns 198.51.100.1 without a route to it on a
	// (beyond the one via b).
	if err := n.b.SetAddresses([]netip.Prefix{addrB4, netip.MustParsePrefix("198.51.100.1/32")}); err != nil {
		t.Fatal(err)
	}
	l := listenTCP(t, n.b, ap("198.51.100.1:80"))
	dialTCP(t, n.a, false, ap("198.51.100.1:80"))
	acceptTCP(t, l)
}

func TestStackSetAddresses(t *testing.T) {
	hub := NewHub()
	s, port := newStackPort(t, hub, 1, Config{})
	groups := func() []multicastGroup {
		hub.mu.RLock()
		defer hub.mu.RUnlock()
		var g []multicastGroup
		for k := range port.groups {
			g = append(g, k)
		}
		return g
	}
	base := groups() // all-nodes and the link-local's solicited-node group
	if len(base) != 2 {
		t.Fatalf("fresh stack subscribed to %v", base)
	}
	if err := s.SetAddresses([]netip.Prefix{addrA4, addrA6, netip.MustParsePrefix("10.1.2.3/8")}); err != nil {
		t.Fatal(err)
	}
	g := groups()
	for _, want := range []multicastGroup{
		{broadcastMAC, 0xc0000201},
		{broadcastMAC, 0x0a010203},
		{[6]byte{0x33, 0x33, 0xff, 0, 0, 1}, 0},
	} {
		if !slices.Contains(g, want) {
			t.Errorf("missing subscription %x/%#x in %v", want.mac, want.adi, g)
		}
	}
	if !slices.Equal(s.Addresses(), []netip.Prefix{addrA4, addrA6, netip.MustParsePrefix("10.1.2.3/8")}) {
		t.Errorf("Addresses() = %v", s.Addresses())
	}
	// Replacing keeps what stays and drops the rest, subscriptions included.
	if err := s.SetAddresses([]netip.Prefix{addrA6}); err != nil {
		t.Fatal(err)
	}
	if got := s.Addresses(); !slices.Equal(got, []netip.Prefix{addrA6}) {
		t.Errorf("Addresses() = %v", got)
	}
	// 2001:db8::1 shares its solicited-node group with the link-local fe80::ff:fe00:1.
	if len(groups()) != 2 {
		t.Errorf("after removal subscribed to %v", groups())
	}
	if s.Routable(netip.MustParseAddr("192.0.2.5")) {
		t.Error("removed prefix still routable")
	}
	for _, bad := range []string{"0.0.0.0/0", "224.0.0.1/4", "127.0.0.2/8"} {
		if err := s.SetAddresses([]netip.Prefix{netip.MustParsePrefix(bad)}); err == nil {
			t.Errorf("SetAddresses(%s) accepted", bad)
		}
	}
	if err := s.SetMTU(1280); err != nil || s.link.MTU() != 1280 {
		t.Errorf("SetMTU: %v, MTU %d", err, s.link.MTU())
	}
	if err := s.SetMTU(20); err == nil {
		t.Error("SetMTU(20) accepted")
	}
	if ll := s.LinkLocal(); ll.String() != "fe80::ff:fe00:1%2" {
		t.Errorf("LinkLocal() = %v", ll)
	}
}

// TestStackLinkLocal connects over IPv6 link-local addresses, whose neighbour discovery
// needs the solicited-node subscriptions.
func TestStackLinkLocal(t *testing.T) {
	n := newNet(t)
	dst := netip.AddrPortFrom(n.b.LinkLocal(), 80)
	l := listenTCP(t, n.b, dst)
	c := dialTCP(t, n.a, true, dst)
	acceptTCP(t, l)
	if got, _ := c.RemoteAddr(); got != dst {
		t.Errorf("RemoteAddr = %v, want %v", got, dst)
	}
}

// TestStackFrameFilter feeds frames the link must drop, and some it must take.
func TestStackFrameFilter(t *testing.T) {
	hub := NewHub()
	s, _ := newStackPort(t, hub, 1, Config{}, addrA4)
	inject := hub.NewPort(testMAC(9), testMTU)
	defer inject.Close()
	own := s.MAC()
	before := s.Counters()
	inject.WriteFrame(own, testMAC(9), 0x88cc, make([]byte, 60))                   // LLDP: ethertype
	inject.WriteFrame([6]byte{0x01, 0, 0x5e, 0, 0, 9}, testMAC(9), 0x0800, nil)    // group not joined
	inject.WriteFrame(own, testMAC(9), 0x0800, make([]byte, testMTU+1))            // oversize (hub refuses)
	inject.WriteFrame(own, testMAC(9), 0x0800, []byte{0x45, 0, 0, 20, 1, 2, 3, 4}) // malformed IPv4
	s.link.receive(own, testMAC(9), 0x0800, make([]byte, testMTU+1))               // oversize
	s.link.receive(testMAC(7), testMAC(9), 0x0800, make([]byte, 40))               // other host
	s.link.receive([6]byte{0x01, 0, 0x5e, 0, 0, 9}, testMAC(9), 0x0800, nil)       // group not joined
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := s.Counters()
		if c.DropEtherType-before.DropEtherType == 1 && c.DropNotForUs-before.DropNotForUs == 2 &&
			c.DropOversize-before.DropOversize == 1 && c.IPMalformed-before.IPMalformed == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters %+v (before %+v)", c, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestErrno(t *testing.T) {
	for _, tc := range []struct {
		err  tcpip.Error
		want syscall.Errno
	}{
		{nil, 0},
		{&tcpip.ErrConnectionRefused{}, syscall.ECONNREFUSED},
		{&tcpip.ErrNoPortAvailable{}, syscall.EADDRNOTAVAIL},
		{&tcpip.ErrClosedForReceive{}, 0},
		{&tcpip.ErrInvalidNICID{}, syscall.ENODEV}, // gVisor's own table panics on this one
		{&tcpip.ErrMulticastInputCannotBeOutput{}, syscall.EINVAL},
		{&tcpip.ErrWouldBlock{}, syscall.EAGAIN},
	} {
		if got := errno(tc.err); got != tc.want {
			t.Errorf("errno(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// FuzzReceiveFrame feeds arbitrary frames to a stack with listening TCP, UDP and ping
// endpoints: nothing may panic, leak or hang, whatever the bytes.
func FuzzReceiveFrame(f *testing.F) {
	hub := NewHub()
	s, _ := newStackPort(f, hub, 1, Config{}, addrA4, addrA6)
	l := listenTCP(f, s, ap("[::]:80"))
	_ = l
	u := newUDP(f, s, true, "[::]:53")
	_ = u
	own := s.MAC()
	f.Add(own[:], uint16(0x0800), []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1, 0, 53, 0, 53, 0, 8, 0, 0})
	f.Add(broadcastMAC[:], uint16(0x0806), []byte{0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 192, 0, 2, 2, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1})
	f.Add([]byte{0x33, 0x33, 0, 0, 0, 1}, uint16(0x86dd), make([]byte, 60))
	f.Fuzz(func(t *testing.T, dst []byte, etherType uint16, payload []byte) {
		if len(dst) < 6 {
			return
		}
		s.link.receive([6]byte(dst[:6]), testMAC(2), etherType, payload)
	})
}

func TestStackNeighbors(t *testing.T) {
	n := newNet(t)
	l := listenTCP(t, n.b, ap("192.0.2.2:80"))
	dialTCP(t, n.a, false, ap("192.0.2.2:80"))
	acceptTCP(t, l)
	u := newUDP(t, n.a, true, "")
	u.WriteTo([]byte("x"), ap("[2001:db8::2]:9"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		nb := n.a.Neighbors()
		if nb[addrB4.Addr()] == testMAC(2) && nb[addrB6.Addr()] == testMAC(2) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Neighbors() = %v", nb)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
