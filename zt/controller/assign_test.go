package controller

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Addresses a zerotier-one 1.14.1 controller gave (zerotier-cli listnetworks on the member).
func TestManagedIPv6MatchesZeroTierOne(t *testing.T) {
	for _, tc := range []struct {
		nwid      ztaddr.NetworkID
		member    ztaddr.Address
		rfc, sixP string
	}{
		{0xd9d826a22363a18e, 0x8604bca100, "fdd9:d826:a223:63a1:8e99:9386:4bc:a100/88", "fcfa:bb87:2c86:4bc:a100::1/40"},
	} {
		if got := ztaddr.RFC4193(tc.nwid, tc.member).String(); got != tc.rfc {
			t.Errorf("rfc4193(%s, %s) = %s, want %s", tc.nwid, tc.member, got, tc.rfc)
		}
		if got := ztaddr.SixPlane(tc.nwid, tc.member).String(); got != tc.sixP {
			t.Errorf("6plane(%s, %s) = %s, want %s", tc.nwid, tc.member, got, tc.sixP)
		}
	}
}

func routes(ps ...string) []netconf.Route {
	var rs []netconf.Route
	for _, p := range ps {
		a, _ := parseInet(p)
		rs = append(rs, netconf.Route{Target: ztaddr.InetAddressOf(netip.AddrPortFrom(a.IP, uint16(a.Port)))})
	}
	return rs
}

func TestAssignIPv4(t *testing.T) {
	none := func(netip.Addr) bool { return false }
	takenSet := func(as ...string) func(netip.Addr) bool {
		m := map[netip.Addr]bool{}
		for _, a := range as {
			m[netip.MustParseAddr(a)] = true
		}
		return func(a netip.Addr) bool { return m[a] }
	}
	for _, tc := range []struct {
		name       string
		start, end string
		routes     []netconf.Route
		member     ztaddr.Address
		taken      func(netip.Addr) bool
		want       string // "" = none
	}{
		// Values observed on zerotier-one 1.14.1 controllers.
		{"lab member A", "10.147.17.10", "10.147.17.200", routes("10.147.17.0/24"), 0x8604bca100, none, "10.147.17.128/24"},
		{"lab member B", "10.147.17.10", "10.147.17.200", routes("10.147.17.0/24"), 0xd2007d3b7d, none, "10.147.17.189/24"},
		{"protocol notes", "10.147.17.1", "10.147.17.254", routes("10.147.17.0/24"), 0xa4ed39fd38, none, "10.147.17.138/24"},
		// The next free address after collisions.
		{"taken", "10.147.17.10", "10.147.17.200", routes("10.147.17.0/24"), 0x8604bca100, takenSet("10.147.17.128", "10.147.17.129"), "10.147.17.130/24"},
		// Wraps around to the start of the pool.
		{"wrap", "10.0.0.1", "10.0.0.4", routes("10.0.0.0/24"), 0x0000000002, takenSet("10.0.0.3"), "10.0.0.1/24"},
		// x.x.x.255 is skipped.
		{"no .255", "10.0.0.250", "10.0.1.10", routes("10.0.0.0/16"), 5, none, "10.0.1.0/16"},
		// Without a covering route nothing is assigned; the first covering route gives the bits.
		{"no route", "10.0.0.1", "10.0.0.9", routes("10.1.0.0/16"), 1, none, ""},
		{"first route wins", "10.0.0.1", "10.0.0.9", routes("10.0.0.0/16", "10.0.0.0/24"), 1, none, "10.0.0.2/16"},
		// A route with host bits matches nothing (zerotier-one compares masked address to it).
		{"route host bits", "10.0.0.1", "10.0.0.9", routes("10.0.0.1/24"), 1, none, ""},
		{"default route", "10.0.0.1", "10.0.0.9", routes("0.0.0.0/0"), 1, none, ""},
		{"single address", "10.0.0.7", "10.0.0.7", routes("10.0.0.0/8"), 99, none, "10.0.0.7/8"},
		{"reversed", "10.0.0.9", "10.0.0.1", routes("10.0.0.0/8"), 1, none, ""},
		{"zero start", "0.0.0.0", "10.0.0.1", routes("0.0.0.0/0"), 1, none, ""},
		{"full", "10.0.0.1", "10.0.0.3", routes("10.0.0.0/24"), 1, takenSet("10.0.0.1", "10.0.0.2"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := assignIPv4(netip.MustParseAddr(tc.start), netip.MustParseAddr(tc.end), tc.routes, tc.member, tc.taken)
			got := ""
			if ok {
				got = p.String()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAssignIPv6(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	none := func(netip.Addr) bool { return false }
	// A pool spanning ≥ 2^40 in its low half: start + member address.
	p, ok := assignIPv6(netip.MustParseAddr("fd00::"), netip.MustParseAddr("fd00::ffff:ffff:ffff"), routes("fd00::/64"), 0x8604bca100, none, rnd)
	if !ok || p.String() != "fd00::86:4bc:a100/64" {
		t.Errorf("got %v %v", p, ok)
	}
	// Taken, or a small pool: random addresses inside the pool.
	first := p.Addr()
	for _, tc := range []struct{ start, end string }{{"fd00::", "fd00::ffff:ffff:ffff"}, {"fd00::10", "fd00::20"}} {
		s, e := netip.MustParseAddr(tc.start), netip.MustParseAddr(tc.end)
		p, ok := assignIPv6(s, e, routes("fd00::/64"), 0x8604bca100, func(a netip.Addr) bool { return a == first }, rnd)
		if !ok || p.Addr() == first || p.Addr().Less(s) || e.Less(p.Addr()) || p.Bits() != 64 {
			t.Errorf("%s-%s: got %v %v", tc.start, tc.end, p, ok)
		}
	}
	// Only on-link routes count.
	via := routes("fd00::/64")
	via[0].Via = ztaddr.InetAddressOf(netip.AddrPortFrom(netip.MustParseAddr("fd00::1"), 0))
	if p, ok := assignIPv6(netip.MustParseAddr("fd00::"), netip.MustParseAddr("fd00::ffff"), via, 1, none, rnd); ok {
		t.Errorf("assigned %v through a gateway route", p)
	}
}
