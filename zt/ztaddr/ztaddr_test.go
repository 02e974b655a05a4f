package ztaddr

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

func TestAddress(t *testing.T) {
	a, err := ParseAddress("8604BCA100")
	if err != nil || a != 0x8604bca100 || a.String() != "8604bca100" {
		t.Fatalf("ParseAddress = %v, %v", a, err)
	}
	b := a.Append(nil)
	if !bytes.Equal(b, []byte{0x86, 0x04, 0xbc, 0xa1, 0x00}) || AddressFrom(b) != a {
		t.Fatalf("encoding %x", b)
	}
	for _, s := range []string{"", "123", "8604bca1000", "zz04bca100"} {
		if _, err := ParseAddress(s); err == nil {
			t.Errorf("ParseAddress(%q) succeeded", s)
		}
	}
	for a, want := range map[Address]bool{0: true, 0xff00000001: true, 0xfe00000000: false, 1: false} {
		if a.IsReserved() != want {
			t.Errorf("%s.IsReserved() = %v", a, !want)
		}
	}
}

func TestNetworkID(t *testing.T) {
	n, err := ParseNetworkID("d9d826a22363a18e")
	if err != nil || n.Controller() != 0xd9d826a223 || n.Number() != 0x63a18e || n.String() != "d9d826a22363a18e" {
		t.Fatalf("%v %v", n, err)
	}
	if NewNetworkID(0xd9d826a223, 0x63a18e) != n {
		t.Fatal("NewNetworkID")
	}
	if _, err := ParseNetworkID("d9d826a22363a18"); err == nil {
		t.Fatal("short network ID parsed")
	}
}

func TestNodeMAC(t *testing.T) {
	for _, tc := range []struct {
		nwid NetworkID
		addr Address
		mac  string
	}{
		{0x2d23d04fb780b635, 0xa4ed39fd38, "36:12:6d:8e:b2:e8"}, // zt1-protocol.md §5.2
		{0x0000000000000050, 0x0102030405, "32:01:02:03:04:05"}, // 0x52 is avoided
		{0xd9d826a22363a18e, 0x8604bca100, ""},
	} {
		m := NodeMAC(tc.addr, tc.nwid)
		if tc.mac != "" && m.String() != tc.mac {
			t.Errorf("NodeMAC(%s, %s) = %s, want %s", tc.addr, tc.nwid, m, tc.mac)
		}
		if m.IsMulticast() || m[0]&2 == 0 {
			t.Errorf("%s is not a locally administered unicast MAC", m)
		}
		back, ok := m.NodeAddress(tc.nwid)
		if !ok || back != tc.addr {
			t.Errorf("NodeAddress(%s) = %s, %v", m, back, ok)
		}
		if _, ok := m.NodeAddress(tc.nwid ^ 0x04); ok {
			t.Errorf("%s accepted on a network with another first octet", m)
		}
		p, err := ParseMAC(m.String())
		if err != nil || p != m {
			t.Errorf("ParseMAC round trip: %v", err)
		}
	}
}

func TestMulticastGroups(t *testing.T) {
	g, ok := AddressResolutionGroup(netip.MustParseAddr("10.147.17.189"))
	if !ok || g.MAC != Broadcast || g.ADI != 0x0a9311bd {
		t.Errorf("IPv4 ARP group = %v", g)
	}
	g, ok = AddressResolutionGroup(netip.MustParseAddr("fdd9:d826:a223:63a1:8e99:93d2:7d:3b7d"))
	if !ok || g.MAC != (MAC{0x33, 0x33, 0xff, 0x7d, 0x3b, 0x7d}) || g.ADI != 0 {
		t.Errorf("IPv6 NDP group = %v", g)
	}
	if b := g.Append(nil); MulticastGroupFrom(b) != g || len(b) != MulticastGroupLength {
		t.Error("group encoding round trip")
	}
	arp, _ := hex.DecodeString("0001080006040001" + "32d9d826a223" + "0a931180" + "000000000000" + "0a9311bd")
	for _, tc := range []struct {
		dst  MAC
		et   uint16
		data []byte
		want MulticastGroup
		ok   bool
	}{
		{Broadcast, EtherTypeARP, arp, MulticastGroup{Broadcast, 0x0a9311bd}, true},
		{Broadcast, EtherTypeARP, arp[:27], MulticastGroup{Broadcast, 0}, true},
		{Broadcast, EtherTypeIPv4, arp, MulticastGroup{Broadcast, 0}, true},
		{MAC{0x33, 0x33, 0xff, 1, 2, 3}, EtherTypeIPv6, nil, MulticastGroup{MAC{0x33, 0x33, 0xff, 1, 2, 3}, 0}, true},
		{MAC{0x32, 1, 2, 3, 4, 5}, EtherTypeIPv4, nil, MulticastGroup{}, false},
	} {
		g, ok := GroupForFrame(tc.dst, tc.et, tc.data)
		if g != tc.want || ok != tc.ok {
			t.Errorf("GroupForFrame(%s, %04x) = %v %v, want %v %v", tc.dst, tc.et, g, ok, tc.want, tc.ok)
		}
	}
}

func TestInetAddress(t *testing.T) {
	for _, tc := range []struct {
		hex  string
		str  string
		nil_ bool
	}{
		{"00", "nil", true},
		{"04c0000201" + "4e1b", "192.0.2.1/19995", false},
		{"06" + "20010db8000000000000000000000001" + "270f", "2001:db8::1/9999", false},
		{"01aabbccddeeff", "reserved(01aabbccddeeff)", false},
		{"02aabbccddeeff", "reserved(02aabbccddeeff)", false},
		{"030002abcd", "reserved(030002abcd)", false},
	} {
		b, _ := hex.DecodeString(tc.hex)
		a, n, err := ParseInetAddress(append(b, 0x99))
		if err != nil || n != len(b) || a.Len() != n {
			t.Fatalf("%s: n=%d len=%d err=%v", tc.hex, n, a.Len(), err)
		}
		if a.String() != tc.str || a.IsNil() != tc.nil_ {
			t.Errorf("%s: String %s IsNil %v", tc.hex, a, a.IsNil())
		}
		if got := a.Append(nil); !bytes.Equal(got, b) {
			t.Errorf("%s: re-encoded %x", tc.hex, got)
		}
	}
	for _, h := range []string{"", "05", "04c00002", "06aa", "0300ff00", "01aa"} {
		b, _ := hex.DecodeString(h)
		if _, _, err := ParseInetAddress(b); !errors.Is(err, ErrBadInetAddress) {
			t.Errorf("%q parsed: %v", h, err)
		}
	}
	p := netip.MustParsePrefix("10.147.17.0/24")
	a := InetAddressOfPrefix(p)
	if hex.EncodeToString(a.Append(nil)) != "040a9311000018" {
		t.Errorf("prefix encoding %x", a.Append(nil))
	}
	if back, ok := a.Prefix(); !ok || back != p {
		t.Errorf("Prefix() = %v", back)
	}
	if _, ok := InetAddressOf(netip.MustParseAddrPort("10.0.0.1:33")).Prefix(); ok {
		t.Error("port 33 taken as IPv4 prefix")
	}
}

func TestIPScope(t *testing.T) {
	for s, want := range map[string]Scope{
		"0.1.2.3": ScopeNone, "127.0.0.1": ScopeLoopback, "10.1.2.3": ScopePrivate, "192.0.2.1": ScopePrivate,
		"198.51.100.7": ScopePrivate, "203.0.113.9": ScopePrivate, "100.64.0.1": ScopePrivate,
		"100.128.0.1": ScopeGlobal, "169.254.1.1": ScopeLinkLocal, "172.16.0.1": ScopePrivate,
		"172.32.0.1": ScopeGlobal, "28.1.1.1": ScopePseudoPrivate, "224.0.0.1": ScopeMulticast,
		"240.0.0.1": ScopePseudoPrivate, "255.255.255.255": ScopeNone, "8.8.8.8": ScopeGlobal,
		"::1": ScopeLoopback, "::": ScopeNone, "fe80::1": ScopeLoopback, "fe80::2": ScopeLinkLocal,
		"fd00::1": ScopePrivate, "ff02::1": ScopeMulticast, "2001:db8::1": ScopeGlobal,
		"::ffff:127.0.0.1": ScopeLoopback,
	} {
		if got := IPScope(netip.MustParseAddr(s)); got != want {
			t.Errorf("IPScope(%s) = %d, want %d", s, got, want)
		}
	}
}

func TestManagedIPv6(t *testing.T) {
	// The lab network's config assigns member d2007d3b7d this RFC4193 address (lab-capture).
	if got := RFC4193(0xd9d826a22363a18e, 0xd2007d3b7d).String(); got != "fdd9:d826:a223:63a1:8e99:93d2:7d:3b7d/88" {
		t.Errorf("RFC4193 = %s", got)
	}
	if got := SixPlane(0xd9d826a22363a18e, 0xd2007d3b7d).String(); got != "fcfa:bb87:2cd2:7d:3b7d::1/40" {
		t.Errorf("6PLANE = %s", got)
	}
}
