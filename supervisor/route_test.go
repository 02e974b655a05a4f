package supervisor

import (
	"net/netip"
	"testing"

	"github.com/ztnc/ztnc/netstack"
)

// routeStack is a stack on a hub of its own with addresses and routes.
func routeStack(t *testing.T, mac byte, addr string, routes ...string) *netstack.Stack {
	t.Helper()
	st, err := netstack.New(netstack.NewHub().NewPort([6]byte{2, 0, 0, 0, 0, mac}, 2800), netstack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.SetAddresses([]netip.Prefix{netip.MustParsePrefix(addr)}); err != nil {
		t.Fatal(err)
	}
	var rs []netstack.Route
	for _, r := range routes {
		rs = append(rs, netstack.Route{Dst: netip.MustParsePrefix(r)})
	}
	if err := st.SetRoutes(rs); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRouteOutages: fall-through fails closed around networks that are not up, and only
// around them.
func TestRouteOutages(t *testing.T) {
	// Network a: 198.51.100.0/24. Network b: 203.0.113.0/24, and a route to the lower half of
	// a's subnet, which b serves when a cannot.
	a := routeStack(t, 1, "198.51.100.2/24")
	b := routeStack(t, 2, "203.0.113.2/24", "198.51.100.0/25")
	name := map[*netstack.Stack]string{a: "a", b: "b", nil: "-"}
	const (
		up = NetworkUp
		dn = NetworkDown
		uc = NetworkUnconfigured
	)
	hole := []HostRule{{Prefix: netip.MustParsePrefix("192.0.2.0/24")}}
	for _, tc := range []struct {
		a, b    NetworkStatus
		isolate bool
		dst     string
		kind    routeKind
		st      *netstack.Stack
	}{
		// Every network up: by routes, the rest to the host.
		{up, up, false, "198.51.100.7:80", toStack, a},
		{up, up, false, "198.51.100.200:80", toStack, a},
		{up, up, false, "203.0.113.9:80", toStack, b},
		{up, up, false, "192.0.2.9:80", toHost, nil},
		{up, up, false, "127.0.0.1:80", toHost, nil},
		{up, up, true, "192.0.2.9:80", toHost, nil}, // the hole
		{up, up, true, "8.8.8.8:53", unreachable, nil},
		// a down: its destinations go nowhere, unless b claims them; its own address stays.
		{dn, up, false, "198.51.100.200:80", unreachable, nil},
		{dn, up, false, "[::ffff:198.51.100.200]:80", unreachable, nil},
		{dn, up, false, "198.51.100.7:80", toStack, b},
		{dn, up, false, "198.51.100.2:80", toStack, a},
		{dn, up, false, "203.0.113.9:80", toStack, b},
		{dn, up, false, "224.0.0.251:5353", toStack, b}, // multicast: b, which is up
		{dn, up, false, "192.0.2.9:80", toHost, nil},
		{dn, up, false, "127.0.0.1:80", toHost, nil},
		{dn, dn, false, "224.0.0.251:5353", unreachable, nil},
		{dn, dn, false, "198.51.100.7:80", unreachable, nil},
		{dn, dn, false, "192.0.2.9:80", toHost, nil},
		// a without a config: nothing reaches the host but loopback, holes included.
		{uc, up, false, "198.51.100.200:80", unreachable, nil},
		{uc, up, false, "192.0.2.9:80", unreachable, nil},
		{uc, up, false, "[2001:db8::1]:80", unreachable, nil},
		{uc, up, true, "192.0.2.9:80", unreachable, nil},
		{uc, up, false, "127.0.0.1:80", toHost, nil},
		{uc, up, false, "203.0.113.9:80", toStack, b},
		{uc, up, false, "198.51.100.7:80", toStack, b},
		{up, uc, false, "198.51.100.200:80", toStack, a},
		{up, uc, false, "192.0.2.9:80", unreachable, nil},
		// Back up.
		{up, up, false, "198.51.100.200:80", toStack, a},
		{up, up, false, "192.0.2.9:80", toHost, nil},
	} {
		o := &Outages{}
		o.Set(a, tc.a)
		o.Set(b, tc.b)
		s := &Supervisor{stack: a, stacks: []*netstack.Stack{a, b}, loopbacks: &loopbackPorts{},
			policy: Policy{Isolate: tc.isolate, Allow: hole, Outages: o}}
		for _, udp := range []bool{false, true} {
			kind, st := s.route(udp, netip.MustParseAddrPort(tc.dst))
			if kind != tc.kind || st != tc.st {
				t.Errorf("a %d, b %d, isolate %v, udp %v: %s goes to %d %s, want %d %s",
					tc.a, tc.b, tc.isolate, udp, tc.dst, kind, name[st], tc.kind, name[tc.st])
			}
		}
	}
}

// TestRouteOutagesShared: one Outages serves every supervisor of an instance, and a
// network of the instance that a program does not have does not hold that program back.
func TestRouteOutagesShared(t *testing.T) {
	a := routeStack(t, 1, "198.51.100.2/24")
	b := routeStack(t, 2, "203.0.113.2/24")
	o := &Outages{}
	pol := Policy{Outages: o}
	older := &Supervisor{stack: a, stacks: []*netstack.Stack{a}, loopbacks: &loopbackPorts{}, policy: pol}
	newer := &Supervisor{stack: a, stacks: []*netstack.Stack{a, b}, loopbacks: &loopbackPorts{}, policy: pol}
	host := netip.MustParseAddrPort("192.0.2.9:80")
	virtual := netip.MustParseAddrPort("198.51.100.9:80")

	o.Set(b, NetworkUnconfigured)
	if k, _ := older.route(false, host); k != toHost {
		t.Errorf("a program without b: host destination goes to %d while b has no config", k)
	}
	if k, _ := newer.route(false, host); k != unreachable {
		t.Errorf("a program with b: host destination goes to %d while b has no config", k)
	}
	o.Set(a, NetworkDown)
	for _, s := range []*Supervisor{older, newer} {
		if k, _ := s.route(false, virtual); k != unreachable {
			t.Errorf("a down: %s goes to %d", virtual, k)
		}
	}
	o.Set(a, NetworkUp)
	o.Set(b, NetworkUp)
	if o.down.Load() != nil {
		t.Error("every network up, but the outage map stays")
	}
	for _, s := range []*Supervisor{older, newer} {
		if k, st := s.route(false, virtual); k != toStack || st != a {
			t.Errorf("a up again: %s goes to %d", virtual, k)
		}
		if k, _ := s.route(false, host); k != toHost {
			t.Errorf("all up: %s goes to %d", host, k)
		}
	}
	var none *Outages // a policy without outages
	if none.snapshot()[a] != NetworkUp {
		t.Error("nil Outages: network not up")
	}
}

// BenchmarkRoute: the cost of a routing decision (every connect, every unconnected send) to
// a virtual and to a host destination, with every network up and with one down.
func BenchmarkRoute(b *testing.B) {
	st, err := netstack.New(netstack.NewHub().NewPort([6]byte{2, 0, 0, 0, 0, 1}, 2800), netstack.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	st.SetAddresses([]netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")})
	other, err := netstack.New(netstack.NewHub().NewPort([6]byte{2, 0, 0, 0, 0, 2}, 2800), netstack.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer other.Close()
	other.SetAddresses([]netip.Prefix{netip.MustParsePrefix("203.0.113.2/24")})
	for _, bc := range []struct {
		name string
		down bool
		dst  string
	}{
		{"up/virtual", false, "203.0.113.9:80"},
		{"up/host", false, "192.0.2.9:80"},
		{"down/virtual", true, "198.51.100.9:80"},
		{"down/host", true, "192.0.2.9:80"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := &Outages{}
			if bc.down {
				o.Set(st, NetworkDown)
			}
			s := &Supervisor{stack: st, stacks: []*netstack.Stack{st, other}, loopbacks: &loopbackPorts{}, policy: Policy{Outages: o}}
			ap := netip.MustParseAddrPort(bc.dst)
			for b.Loop() {
				s.route(true, ap)
			}
		})
	}
}

func TestOutagesUnconfigured(t *testing.T) {
	a, b := routeStack(t, 1, "203.0.113.1/24"), routeStack(t, 2, "198.51.100.1/24")
	var none *Outages
	if none.Unconfigured() {
		t.Fatal("nil Outages: Unconfigured")
	}
	o := &Outages{}
	for _, step := range []struct {
		st     *netstack.Stack
		status NetworkStatus
		want   bool
	}{
		{a, NetworkUp, false},
		{a, NetworkDown, false},
		{b, NetworkUnconfigured, true},
		{a, NetworkUp, true},
		{b, NetworkDown, false},
		{b, NetworkUnconfigured, true},
		{b, NetworkUp, false},
	} {
		o.Set(step.st, step.status)
		if got := o.Unconfigured(); got != step.want {
			t.Fatalf("after Set(%v, %v): Unconfigured() = %v, want %v", step.st.Addresses(), step.status, got, step.want)
		}
	}
}
