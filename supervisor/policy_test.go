package supervisor

import (
	"net/netip"
	"testing"
)

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestHostAllowed(t *testing.T) {
	p := Policy{Isolate: true, Allow: []HostRule{
		{Prefix: netipPrefix("192.0.2.0/24")},
		{Prefix: netipPrefix("198.51.100.7/32"), Port: 5432},
		{Prefix: netipPrefix("2001:db8::/32"), Port: 443},
	}}
	for _, tc := range []struct {
		ap   string
		want bool
	}{
		{"192.0.2.9:80", true},
		{"[::ffff:192.0.2.9]:80", true}, // v4-mapped, from dual-stack sockets
		{"198.51.100.7:5432", true},
		{"198.51.100.7:5433", false},
		{"198.51.100.8:5432", false},
		{"[2001:db8::1]:443", true},
		{"[2001:db8::1]:80", false},
		{"127.0.0.1:53", false},
	} {
		if got := p.HostAllowed(netip.MustParseAddrPort(tc.ap)); got != tc.want {
			t.Errorf("isolated: %s allowed = %v, want %v", tc.ap, got, tc.want)
		}
	}
	var open Policy
	if !open.HostAllowed(netip.MustParseAddrPort("203.0.113.1:1")) {
		t.Error("fall-through refuses a host destination")
	}
}

func TestLoopbackPorts(t *testing.T) {
	var l loopbackPorts
	ap := netip.MustParseAddrPort
	if l.add(false, ap("10.9.0.1:80")) {
		t.Error("a virtual address was indexed")
	}
	if !l.add(false, ap("127.0.0.1:80")) || !l.add(false, ap("[::]:81")) || !l.add(true, ap("0.0.0.0:53")) {
		t.Fatal("not indexed")
	}
	for _, tc := range []struct {
		udp  bool
		ap   string
		want bool
	}{
		{false, "127.0.0.1:80", true},
		{false, "127.0.0.2:80", false}, // bound to 127.0.0.1 only
		{false, "[::1]:80", false},
		{false, "127.0.0.1:81", true}, // the IPv6 wildcard takes IPv4 too
		{false, "[::1]:81", true},
		{true, "127.0.0.1:80", false}, // TCP's port, not UDP's
		{true, "127.9.9.9:53", true},
		{true, "[::1]:53", false}, // the IPv4 wildcard does not take IPv6
	} {
		if got := l.has(tc.udp, ap(tc.ap)); got != tc.want {
			t.Errorf("has(udp=%v, %s) = %v, want %v", tc.udp, tc.ap, got, tc.want)
		}
	}
	l.remove(false, ap("127.0.0.1:80"))
	if l.has(false, ap("127.0.0.1:80")) {
		t.Error("still indexed after remove")
	}
}
