package netconf

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

func identities(t testing.TB) []*identity.Identity {
	t.Helper()
	b, err := os.ReadFile("../testdata/zt1/identities.txt")
	if err != nil {
		t.Fatal(err)
	}
	var ids []*identity.Identity
	for _, l := range strings.Fields(string(b)) {
		id, err := identity.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func TestDictionary(t *testing.T) {
	raw := []byte("v=0000000000000007\nn=test\\enet\\n2\\r\\0\\\\x\\q\nempty=\r\nnoequals\nb=1\nv=dup")
	d := ParseDictionary(append(raw, 0, 'z', '=', '1'))
	if got := d.String("n"); got != "test=net\n2\r\x00\\xq" {
		t.Errorf("n = %q", got)
	}
	if d.Uint("v", 0) != 7 || d.Uint("missing", 99) != 99 || !d.Bool("b", false) || d.Bool("empty", true) {
		t.Errorf("typed getters: v=%d b=%v", d.Uint("v", 0), d.Bool("b", false))
	}
	if _, ok := d.Get("z"); ok {
		t.Error("entry after NUL was read")
	}
	if len(d.Entries) != 5 {
		t.Errorf("%d entries: %q", len(d.Entries), d.Entries)
	}
	// Canonical text re-encodes identically; escapes normalise.
	want := "v=0000000000000007\nn=test\\enet\\n2\\r\\0\\\\xq\nempty=\nb=1\nv=dup"
	if got := string(d.Bytes()); got != want {
		t.Errorf("re-encoded:\n%q\nwant\n%q", got, want)
	}
	if got := ParseDictionary([]byte(want)).Bytes(); string(got) != want {
		t.Errorf("canonical round trip: %q", got)
	}
	// strtoull semantics.
	for s, want := range map[string]uint64{"1b7740": 0x1b7740, "0x10": 16, "FFz": 255, "zz": 0, "11112222333344445": ^uint64(0)} {
		d := ParseDictionary([]byte("k=" + s))
		if got := d.Uint("k", 5); got != want {
			t.Errorf("Uint(%q) = %x, want %x", s, got, want)
		}
	}
	var d2 Dictionary
	d2.AddInt("neg", -10)
	d2.AddBool("t", true)
	d2.AddAddress("id", 0x5fd1745e2a)
	if got := string(d2.Bytes()); got != "neg=-000000000000000a\nt=1\nid=5fd1745e2a" {
		t.Errorf("typed adds: %q", got)
	}
	if ParseDictionary(d2.Bytes()).Int("neg", 0) != -10 {
		t.Error("Int")
	}
}

func TestRules(t *testing.T) {
	rules := []Rule{
		MatchEtherTypeRule(0x0800),
		{Type: MatchIPv4Dest, Not: true, Field: []byte{10, 147, 17, 0, 24}},
		MatchPrefix(MatchIPv6Source, netip.MustParsePrefix("fd00::/8")),
		NewRule(MatchIPProtocol, []byte{6}),
		MatchRange(MatchDestPortRange, 80, 443),
		MatchAddress(MatchSourceAddress, 0x8604bca100),
		Forward(ActionTee, 0xd9d826a223, 1, 100),
		{Type: 63, Or: true, Field: []byte{1, 2, 3}}, // unknown type: carried opaquely
		Action(ActionAccept),
	}
	b := AppendRules(nil, rules)
	got, err := ParseRules(b, MaxRules)
	if err != nil || !reflect.DeepEqual(got, rules) {
		t.Fatalf("round trip: %v\n%v\n%v", err, got, rules)
	}
	if !bytes.Equal(AppendRules(nil, got), b) {
		t.Fatal("re-encode differs")
	}
	if got[0].Uint16() != 0x0800 || got[1].Prefix() != netip.MustParsePrefix("10.147.17.0/24") || got[5].Address() != 0x8604bca100 || got[6].Address() != 0xd9d826a223 {
		t.Error("accessors")
	}
	if got[2].Prefix() != netip.MustParsePrefix("fd00::/8") || got[3].Uint8() != 6 {
		t.Error("IPv6 prefix / protocol accessors")
	}
	if s, e := got[4].Range(); s != 80 || e != 443 {
		t.Error("Range")
	}
	if b[2] != 0x80|byte(MatchIPv4Dest) && b[4] != 0x80|byte(MatchIPv4Dest) {
		t.Error("NOT bit not encoded")
	}
	for _, bad := range [][]byte{{1}, {37, 2, 8}, {37, 3, 1, 2}} {
		if _, err := ParseRules(bad, MaxRules); !errors.Is(err, ErrBadRules) {
			t.Errorf("%x: %v", bad, err)
		}
	}
	if _, err := ParseRules(b, 2); !errors.Is(err, ErrBadRules) {
		t.Error("rule limit not enforced")
	}
	if (Rule{Type: MatchIPv6Dest}).Prefix().Bits() != 0 {
		t.Error("short field accessor")
	}
}

func TestCOM(t *testing.T) {
	ids := identities(t)
	ctrl, a, b := ids[0], ids[1], ids[2]
	nwid := ztaddr.NewNetworkID(ctrl.Address(), 0x63a18e)
	ca := NewCOM(1_700_000_000_000, DefaultCredentialTimeMaxDelta, nwid, a)
	cb := NewCOM(1_700_000_100_000, DefaultCredentialTimeMaxDelta, nwid, b)
	for _, c := range []*COM{ca, cb} {
		if err := c.Verify(ctrl); !errors.Is(err, ErrUnsigned) {
			t.Errorf("unsigned COM verifies: %v", err)
		}
		if err := c.Sign(ctrl); err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(ctrl); err != nil {
			t.Fatal(err)
		}
	}
	enc := ca.Append(nil)
	if len(enc) != 1+2+7*24+5+96 {
		t.Errorf("COM length %d", len(enc))
	}
	back, n, err := ParseCOM(append(enc, 0xff))
	if err != nil || n != len(enc) || !reflect.DeepEqual(back, ca) {
		t.Fatalf("round trip: %v", err)
	}
	if ca.NetworkID() != nwid || ca.IssuedTo() != a.Address() || ca.Timestamp() != 1_700_000_000_000 {
		t.Error("accessors")
	}
	if !ca.AgreesWith(cb, b) || !cb.AgreesWith(ca, a) {
		t.Error("COMs of two members do not agree")
	}
	if ca.AgreesWith(cb, a) {
		t.Error("agreement with the wrong identity")
	}
	late := NewCOM(1_700_000_000_000+DefaultCredentialTimeMaxDelta+1, DefaultCredentialTimeMaxDelta, nwid, b)
	other := NewCOM(1_700_000_000_000, DefaultCredentialTimeMaxDelta, nwid+1, b)
	if ca.AgreesWith(late, b) || ca.AgreesWith(other, b) || ca.AgreesWith(&COM{}, b) {
		t.Error("agreement across time window or network")
	}
	tampered := *ca
	tampered.Qualifiers = append([]Qualifier{}, ca.Qualifiers...)
	tampered.Qualifiers[0].Value++
	if err := tampered.Verify(ctrl); !errors.Is(err, identity.ErrBadSignature) {
		t.Errorf("tampered COM: %v", err)
	}
	if err := ca.Verify(a); !errors.Is(err, ErrWrongSigner) {
		t.Errorf("COM verified with a non-controller: %v", err)
	}
	for _, bad := range []string{"02", "0100", "01000200000000000000010000000000000000000000000000000000000000000000000000000000000000000000000000000000", "010009"} {
		raw, _ := hex.DecodeString(bad)
		if _, _, err := ParseCOM(raw); !errors.Is(err, ErrBadCredential) {
			t.Errorf("ParseCOM(%s) = %v", bad, err)
		}
	}
}

func TestCredentials(t *testing.T) {
	ids := identities(t)
	ctrl, a := ids[0], ids[1]
	nwid := ztaddr.NewNetworkID(ctrl.Address(), 0x63a18e)
	lookup := func(x ztaddr.Address) *identity.Identity {
		for _, id := range ids {
			if id.Address() == x {
				return id
			}
		}
		return nil
	}
	tag := &Tag{NetworkID: nwid, Timestamp: 5, ID: 1000, Value: 42, IssuedTo: a.Address()}
	coo := &COO{NetworkID: nwid, Timestamp: 5, ID: 7, IssuedTo: a.Address()}
	coo.AddIP(netip.MustParseAddr("10.147.17.128"))
	coo.AddIP(netip.MustParseAddr("fdd9:d826:a223:63a1:8e99:938d:4bc:a100"))
	coo.AddMAC(ztaddr.NodeMAC(a.Address(), nwid))
	rev := &Revocation{ID: 9, NetworkID: nwid, CredentialID: 0, Threshold: 1234, Flags: RevocationFastPropagate, Target: a.Address(), CredentialType: CredentialCOM}
	capa := &Capability{NetworkID: nwid, Timestamp: 5, ID: 3, MaxCustodyChain: 2, Rules: []Rule{MatchEtherTypeRule(0x86dd), Action(ActionAccept)}}
	for _, err := range []error{tag.Sign(ctrl), coo.Sign(ctrl), rev.Sign(ctrl), capa.Sign(ctrl, a.Address()), capa.Sign(a, ids[2].Address())} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := capa.Sign(ids[2], ids[3].Address()); err == nil {
		t.Error("custody chain grew past its maximum")
	}
	if !coo.Owns(netip.MustParseAddr("10.147.17.128")) || coo.Owns(netip.MustParseAddr("10.147.17.129")) {
		t.Error("COO.Owns")
	}
	type cred interface {
		Append([]byte) []byte
		Verify(*identity.Identity) error
	}
	parsers := map[string]func([]byte) (cred, int, error){
		"tag":        func(b []byte) (cred, int, error) { c, n, err := ParseTag(b); return c, n, err },
		"coo":        func(b []byte) (cred, int, error) { c, n, err := ParseCOO(b); return c, n, err },
		"revocation": func(b []byte) (cred, int, error) { c, n, err := ParseRevocation(b); return c, n, err },
	}
	for name, c := range map[string]cred{"tag": tag, "coo": coo, "revocation": rev} {
		if err := c.Verify(ctrl); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := c.Verify(a); !errors.Is(err, ErrWrongSigner) {
			t.Errorf("%s verified by non-controller: %v", name, err)
		}
		enc := c.Append(nil)
		back, n, err := parsers[name](append(enc, 0xaa))
		if err != nil || n != len(enc) || !reflect.DeepEqual(back, c) {
			t.Errorf("%s round trip: %v (n=%d/%d)", name, err, n, len(enc))
			continue
		}
		enc[len(enc)-3-40] ^= 1 // inside the signature
		if back, _, err := parsers[name](enc); err != nil || back.Verify(ctrl) == nil {
			t.Errorf("%s: tampered signature verifies (%v)", name, err)
		}
		for cut := 0; cut < len(enc); cut += 7 {
			if _, _, err := parsers[name](enc[:cut]); !errors.Is(err, ErrBadCredential) {
				t.Errorf("%s truncated at %d: %v", name, cut, err)
			}
		}
	}
	if len(tag.Append(nil)) != 135 {
		t.Errorf("tag length %d, want 135", len(tag.Append(nil)))
	}
	enc := capa.Append(nil)
	back, n, err := ParseCapability(enc)
	if err != nil || n != len(enc) || !reflect.DeepEqual(back, capa) {
		t.Fatalf("capability round trip: %v", err)
	}
	if err := back.Verify(lookup); err != nil || back.IssuedTo() != ids[2].Address() {
		t.Errorf("capability custody: %v", err)
	}
	back.Custody[1].From = ids[3].Address()
	if err := back.Verify(lookup); !errors.Is(err, ErrWrongSigner) {
		t.Errorf("broken custody chain: %v", err)
	}
	back.Timestamp++
	back.Custody[1].From = a.Address()
	if err := back.Verify(lookup); !errors.Is(err, identity.ErrBadSignature) {
		t.Errorf("modified capability: %v", err)
	}
}

// sampleConfig is the real 1.14.1 config of zt1-protocol.md §7.4 plus every optional field.
func sampleConfig(t testing.TB) *NetworkConfig {
	ids := identities(t)
	ctrl, a := ids[0], ids[1]
	nwid := ztaddr.NewNetworkID(ctrl.Address(), 0x63a18e)
	com := NewCOM(0x1a21b4a6dcc, DefaultCredentialTimeMaxDelta, nwid, a)
	if err := com.Sign(ctrl); err != nil {
		t.Fatal(err)
	}
	tag := &Tag{NetworkID: nwid, Timestamp: 0x1a21b4a6dcc, ID: 1, Value: 2, IssuedTo: a.Address()}
	tag.Sign(ctrl)
	capa := &Capability{NetworkID: nwid, Timestamp: 1, ID: 3, MaxCustodyChain: 1, Rules: []Rule{Action(ActionAccept)}}
	capa.Sign(ctrl, a.Address())
	coo := &COO{NetworkID: nwid, Timestamp: 1, IssuedTo: a.Address()}
	coo.AddIP(netip.MustParseAddr("10.147.17.181"))
	coo.Sign(ctrl)
	c := &NetworkConfig{
		Version: Version, NetworkID: nwid, Timestamp: 0x1a21b4a6dcc, CredentialTimeMaxDelta: 0x1b7740,
		Revision: 1, IssuedTo: a.Address(), Flags: FlagEnableBroadcast, MulticastLimit: 32, Type: TypePrivate,
		Name: "testnet", MTU: 2800, COM: com, Tags: []*Tag{tag}, Capabilities: []*Capability{capa}, COOs: []*COO{coo},
		Specialists: []uint64{SpecialistActiveBridge | 0x3499ae05c9},
		Routes:      []Route{NewRoute(netip.MustParsePrefix("10.147.17.0/24"), netip.Addr{}), NewRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.147.17.1"))},
		StaticIPs:   []ztaddr.InetAddress{ztaddr.InetAddressOfPrefix(netip.MustParsePrefix("10.147.17.181/24"))},
		Rules:       []Rule{Action(ActionAccept)},
		DNS:         DNS{Domain: "lab.example"},
	}
	c.DNS.Servers[0] = ztaddr.InetAddressOf(netip.MustParseAddrPort("10.147.17.1:53"))
	return c
}

func TestNetworkConfig(t *testing.T) {
	c := sampleConfig(t)
	text := c.Dictionary().Bytes()
	for _, want := range []string{
		"v=0000000000000007\nnwid=d9d826a22363a18e\nts=000001a21b4a6dcc\nctmd=00000000001b7740\nr=0000000000000001\nid=8604bca100\ntt=0000000000\ntl=0000000000000000\nf=0000000000000002\nml=0000000000000020\nt=0000000000000000\nn=testnet\nmtu=0000000000000af0\nC=",
		"\nI=\x04\\n\x93\x11\xb5\\0\x18\nR=\x01\\0\nDNS=lab.example\\0\\0",
		"\nssov=0000000000000000\nssoe=0",
	} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("encoding lacks %q", want)
		}
	}
	if !bytes.HasSuffix(text, []byte("\nssov=0000000000000000\nssoe=0")) {
		t.Errorf("encoding ends %q", text[len(text)-40:])
	}
	back, err := ParseNetworkConfig(ParseDictionary(text))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip differs:\n%+v\n%+v", back, c)
	}
	if got := back.Dictionary().Bytes(); !bytes.Equal(got, text) {
		t.Error("re-encode differs")
	}
	if ps := back.AssignedPrefixes(); len(ps) != 1 || ps[0] != netip.MustParsePrefix("10.147.17.181/24") {
		t.Errorf("AssignedPrefixes = %v", ps)
	}
	if bs := back.SpecialistsWith(SpecialistActiveBridge); len(bs) != 1 || bs[0] != 0x3499ae05c9 {
		t.Errorf("bridges = %v", bs)
	}
	if !back.IsPrivate() || !back.BroadcastEnabled() {
		t.Error("flags")
	}
	// Unknown keys survive; MTU is clamped; missing id or old version is refused.
	d := ParseDictionary(text)
	d.AddString("future", "x=y")
	d.Entries[12].Value = []byte("10")
	back, err = ParseNetworkConfig(d)
	if err != nil || back.MTU != MinMTU || len(back.Extra) != 1 || !bytes.HasSuffix(back.Dictionary().Bytes(), []byte("\nfuture=x\\ey")) {
		t.Errorf("extra/clamp: %v %d %v", err, back.MTU, back.Extra)
	}
	set := func(d *Dictionary, key string, v []byte) {
		for i := range d.Entries {
			if d.Entries[i].Key == key {
				d.Entries[i].Value = v
			}
		}
	}
	for key, v := range map[string][]byte{
		"id": []byte("0"), "v": []byte("5"), "nwid": []byte("0"), "I": {4, 1, 2}, "C": {1, 0, 1, 0},
		"RT": {4, 1, 2, 3, 4, 0, 24}, "R": {1, 5}, "DNS": make([]byte, 130), "COO": {1, 2, 3},
	} {
		d := ParseDictionary(text)
		set(d, key, v)
		if _, err := ParseNetworkConfig(d); !errors.Is(err, ErrBadConfig) {
			t.Errorf("config with bad %s accepted: %v", key, err)
		}
	}
}

func TestRequestMetadata(t *testing.T) {
	got := string(RequestMetadata(12, 1, 14, 1, "linux/x86_64", "").Bytes())
	want := "v=0000000000000007\nvend=0000000000000001\npv=000000000000000c\nmajv=0000000000000001\nminv=000000000000000e\nrevv=0000000000000001\nmr=0000000000000400\nmc=0000000000000080\nmcr=0000000000000040\nmt=0000000000000080\nf=0000000000000000\nrevr=0000000000000001\no=linux/x86_64"
	if got != want {
		t.Errorf("metadata\n%q\nwant\n%q", got, want)
	}
}
