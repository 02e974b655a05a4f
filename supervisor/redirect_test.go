package supervisor

import (
	"net/netip"
	"testing"
)

func TestRedirects(t *testing.T) {
	s := &Supervisor{}
	ap := netip.MustParseAddrPort
	s.SetRedirects([]Redirect{
		{UDP: true, From: ap("10.255.255.53:53"), To: ap("127.0.0.1:40053")},
		{From: ap("10.255.255.53:53"), To: ap("127.0.0.1:40054")},
		{UDP: true, From: ap("[fd00::53]:53"), To: ap("[::1]:40053")},
	})
	for _, tc := range []struct {
		udp     bool
		in, out string
	}{
		{true, "10.255.255.53:53", "127.0.0.1:40053"},
		{false, "10.255.255.53:53", "127.0.0.1:40054"},
		{true, "[::ffff:10.255.255.53]:53", "[::ffff:127.0.0.1]:40053"}, // dual-stack sockets
		{true, "[fd00::53]:53", "[::1]:40053"},
		{true, "10.255.255.53:54", "10.255.255.53:54"}, // another port: not redirected
		{true, "10.9.0.1:53", "10.9.0.1:53"},
	} {
		got, _ := s.redirectOut(tc.udp, ap(tc.in))
		if got != ap(tc.out) {
			t.Errorf("out %v (udp %v) = %v, want %v", tc.in, tc.udp, got, tc.out)
		}
		if back := s.redirectIn(tc.udp, got); back != ap(tc.in) {
			t.Errorf("in %v = %v, want %v", got, back, tc.in)
		}
	}
}
