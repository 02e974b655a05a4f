package netstack

import "testing"

func TestParsePortRange(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi uint16
		ok     bool
	}{
		{"32768\t60999\n", 32768, 60999, true},
		{"1024 65535", 1024, 65535, true},
		{"60999 32768", 0, 0, false}, // reversed
		{"5000 5000", 0, 0, false},   // a single port
		{"0 100", 0, 0, false},
		{"32768 70000", 0, 0, false},
		{"32768", 0, 0, false},
		{"", 0, 0, false},
		{"a b", 0, 0, false},
		{"1 2 3", 0, 0, false},
	} {
		lo, hi, ok := parsePortRange(c.in)
		if lo != c.lo || hi != c.hi || ok != c.ok {
			t.Errorf("parsePortRange(%q) = %d, %d, %v; want %d, %d, %v", c.in, lo, hi, ok, c.lo, c.hi, c.ok)
		}
	}
}

// TestEphemeralPortsFollowHost: a connection's local port comes from the host's
// ip_local_port_range, as on Linux, not from gVisor's wider default.
func TestEphemeralPortsFollowHost(t *testing.T) {
	lo, hi, ok := localPortRange()
	if !ok {
		t.Skip(localPortRangeFile + " unreadable")
	}
	n := newNet(t)
	l := listenTCP(t, n.b, ap("[::]:80"))
	for range 20 {
		c := dialTCP(t, n.a, true, ap("[2001:db8::2]:80"))
		acceptTCP(t, l)
		if p := c.LocalAddr().Port(); p < lo || p > hi {
			t.Fatalf("local port %d outside the host's range %d-%d", p, lo, hi)
		}
	}
}
