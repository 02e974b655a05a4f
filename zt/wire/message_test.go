package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

func vectorIdentities(t testing.TB) []*identity.Identity {
	t.Helper()
	b, err := os.ReadFile("../testdata/zt1/identities.txt")
	if err != nil {
		t.Fatal(err)
	}
	var ids []*identity.Identity
	for _, l := range strings.Fields(string(b)) {
		id, _ := identity.Parse(l)
		ids = append(ids, id)
	}
	return ids
}

// sampleMessages returns one message of each kind, keyed by verb, with an OK/ERROR envelope
// where needed.
func sampleMessages(t testing.TB) map[Verb][]Message {
	ids := vectorIdentities(t)
	ctrl, a := ids[0], ids[1]
	nwid := ztaddr.NewNetworkID(ctrl.Address(), 0x63a18e)
	com := netconf.NewCOM(1000, netconf.DefaultCredentialTimeMaxDelta, nwid, a)
	com.Sign(ctrl)
	tag := &netconf.Tag{NetworkID: nwid, ID: 1, Value: 2, IssuedTo: a.Address()}
	tag.Sign(ctrl)
	coo := &netconf.COO{NetworkID: nwid, IssuedTo: a.Address()}
	coo.AddIP(netip.MustParseAddr("10.147.17.128"))
	coo.Sign(ctrl)
	rev := &netconf.Revocation{NetworkID: nwid, Target: a.Address(), CredentialType: netconf.CredentialCOM}
	rev.Sign(ctrl)
	capa := &netconf.Capability{NetworkID: nwid, ID: 9, MaxCustodyChain: 1, Rules: []netconf.Rule{netconf.Action(netconf.ActionAccept)}}
	capa.Sign(ctrl, a.Address())
	grp := ztaddr.MulticastGroup{MAC: ztaddr.Broadcast, ADI: 0x0a931180}
	earth, _, _ := world.Parse(world.EarthPlanet)
	ok := func(v Verb, body Message) *OKMessage {
		return &OKMessage{InReVerb: v, InReID: 0x1234, Body: body.Append(nil)}
	}
	chunk := &ConfigChunk{NetworkID: nwid, Data: []byte("v=7\nn=x"), UpdateID: 77, TotalLength: 7}
	chunk.Sign(ctrl)
	return map[Verb][]Message{
		VerbHello: {&Hello{ProtocolVersion: 12, Major: 1, Minor: 14, Revision: 1, Timestamp: 99, Identity: a.Public(),
			Destination: ztaddr.InetAddressOf(netip.MustParseAddrPort("192.0.2.1:19993")), PlanetID: 7, PlanetTS: 8,
			Moons: []MoonRef{{world.TypeMoon, 5, 6}}}},
		VerbOK: {
			ok(VerbHello, &HelloOK{Timestamp: 99, ProtocolVersion: 12, Major: 1, Minor: 14, Revision: 1,
				PhysicalAddress: ztaddr.InetAddressOf(netip.MustParseAddrPort("[2001:db8::1]:9993")), Worlds: earth.Bytes()}),
			ok(VerbWhois, &WhoisOK{Identities: []*identity.Identity{a.Public(), ctrl.Public()}}),
			ok(VerbNetworkConfigRequest, chunk),
			ok(VerbMulticastGather, &GatherResult{NetworkID: nwid, Group: grp, TotalKnown: 3, Members: []ztaddr.Address{1, 2}}),
			ok(VerbMulticastFrame, &MulticastFrameOK{NetworkID: nwid, Group: grp, Flags: MulticastFlagGatherLimit | MulticastFlagCOM, COM: com, TotalKnown: 1, Members: []ztaddr.Address{3}}),
			ok(VerbExtFrame, &ExtFrameOK{NetworkID: nwid}),
			ok(VerbEcho, &ConfigAck{NetworkID: nwid, UpdateID: 77}),
		},
		VerbError:      {NewNetworkError(VerbNetworkConfigRequest, 5, ErrorNetworkAccessDenied, nwid)},
		VerbWhois:      {&Whois{Addresses: []ztaddr.Address{a.Address(), ctrl.Address()}}},
		VerbRendezvous: {&Rendezvous{Peer: a.Address(), Endpoint: ztaddr.InetAddressOf(netip.MustParseAddrPort("192.0.2.2:19994"))}, &Rendezvous{Peer: 5, Endpoint: ztaddr.InetAddressOf(netip.MustParseAddrPort("[2001:db8::2]:1"))}},
		VerbFrame:      {&Frame{NetworkID: nwid, EtherType: 0x0800, Data: []byte{0x45, 0, 0, 20}}},
		VerbExtFrame: {&ExtFrame{NetworkID: nwid, Flags: ExtFrameFlagCOM | ExtFrameFlagPlsAck, COM: com, Destination: ztaddr.MAC{0x32, 1, 2, 3, 4, 5},
			Source: ztaddr.MAC{0x32, 5, 4, 3, 2, 1}, EtherType: 0x86dd, Data: []byte{0x60}}},
		VerbEcho:                 {Opaque{1, 2, 3}},
		VerbMulticastLike:        {&MulticastLike{Subscriptions: []Subscription{{nwid, grp}, {nwid, ztaddr.MulticastGroup{MAC: ztaddr.MAC{0x33, 0x33, 0xff, 1, 2, 3}}}}}},
		VerbNetworkCredentials:   {&NetworkCredentials{COMs: []*netconf.COM{com}, Capabilities: []*netconf.Capability{capa}, Tags: []*netconf.Tag{tag}, Revocations: []*netconf.Revocation{rev}, COOs: []*netconf.COO{coo}}},
		VerbNetworkConfigRequest: {&ConfigRequest{NetworkID: nwid, Metadata: netconf.RequestMetadata(12, 1, 14, 1, "linux/x86_64", "").Bytes(), Revision: 1, Timestamp: 2}},
		VerbNetworkConfig:        {chunk},
		VerbMulticastGather:      {&MulticastGather{NetworkID: nwid, Flags: GatherFlagCOM, Group: grp, Limit: 33, COM: com}},
		VerbMulticastFrame: {&MulticastFrame{NetworkID: nwid, Flags: MulticastFlagGatherLimit | MulticastFlagSourceMAC | MulticastFlagCOM, COM: com, GatherLimit: 32,
			Source: ztaddr.MAC{0x32, 9, 9, 9, 9, 9}, Group: grp, EtherType: 0x0806, Data: make([]byte, 28)}},
		VerbPushDirectPaths: {&PushDirectPaths{Paths: []PathRecord{NewPathRecord(netip.MustParseAddrPort("192.0.2.2:19994")),
			NewPathRecord(netip.MustParseAddrPort("[2001:db8::3]:9")), {Flags: PathFlagForget, Extension: []byte{1}, Type: 9, Raw: []byte{1, 2}}}}},
		VerbUserMessage: {&UserMessage{TypeID: 70000, Data: []byte("hi")}},
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	for verb, msgs := range sampleMessages(t) {
		for _, m := range msgs {
			enc := m.Append(nil)
			back, err := ParseMessage(verb, enc)
			if err != nil {
				t.Fatalf("%s: %v", verb, err)
			}
			if got := back.Append(nil); !bytes.Equal(got, enc) {
				t.Errorf("%s: re-encode differs\n got %x\nwant %x", verb, got, enc)
			}
			if ok, isOK := back.(*OKMessage); isOK {
				body, err := ok.Decode()
				if err != nil || !bytes.Equal(body.Append(nil), ok.Body) {
					t.Errorf("OK(%s) body: %v", ok.InReVerb, err)
				}
			}
			// Every prefix either decodes (optional trailing sections) or fails cleanly.
			for cut := range enc {
				ParseMessage(verb, enc[:cut])
			}
		}
	}
}

func TestHelloCrypt(t *testing.T) {
	k := testKey()
	h := sampleMessages(t)[VerbHello][0].(*Hello)
	p := Packet(h.Append(NewPacket(nil, 0x0102030405060708, 1, h.Identity.Address(), VerbHello)))
	plain := append(Packet{}, p...)
	if err := CryptHello(p, k); err != nil {
		t.Fatal(err)
	}
	start := len(plain) - 2 - 17
	if !bytes.Equal(p[:start], plain[:start]) || bytes.Equal(p[start:], plain[start:]) {
		t.Error("CryptHello must hide exactly the moon list")
	}
	Armor(p, k, CipherPoly1305None)
	id, err := ParseHelloIdentity(p.Payload())
	if err != nil || !id.Equal(h.Identity) {
		t.Fatal("identity not readable before dearmor")
	}
	if err := Dearmor(p, k); err != nil {
		t.Fatal(err)
	}
	CryptHello(p, k)
	got, err := ParseHello(p.Payload())
	if err != nil || !reflect.DeepEqual(got.Moons, h.Moons) {
		t.Fatalf("HELLO after round trip: %v %+v", err, got)
	}
	// A HELLO that stops after the identity (an old sender) still decodes.
	short := h.Identity.AppendBinary([]byte{12, 1, 14, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9}, false)
	if hs, err := ParseHello(short); err != nil || hs.PlanetID != 0 || !hs.Destination.IsNil() {
		t.Errorf("short HELLO: %v", err)
	}
}

func TestErrorMessages(t *testing.T) {
	e := NewNetworkError(VerbFrame, 9, ErrorNeedMembershipCertificate, 0xd9d826a22363a18e)
	if n, ok := e.NetworkID(); !ok || n != 0xd9d826a22363a18e {
		t.Error("NetworkID")
	}
	u := &ErrorMessage{Code: ErrorUnwantedMulticast, Data: ztaddr.MulticastGroup{MAC: ztaddr.Broadcast, ADI: 7}.Append(make([]byte, 8))}
	if _, g, ok := u.UnwantedGroup(); !ok || g.ADI != 7 {
		t.Error("UnwantedGroup")
	}
	d := netconf.Dictionary{}
	d.AddString("aU", "https://sso.example/")
	sso := &ErrorMessage{Code: ErrorNetworkAuthenticationRequired, Data: append(append(make([]byte, 8), 0, byte(len(d.Bytes()))), d.Bytes()...)}
	if info, ok := sso.AuthenticationInfo(); !ok || info.String("aU") != "https://sso.example/" {
		t.Error("AuthenticationInfo")
	}
	for _, b := range [][]byte{{}, {1, 2}, make([]byte, 9)} {
		if _, err := ParseError(b); !errors.Is(err, ErrBadPayload) {
			t.Errorf("ERROR %x: %v", b, err)
		}
	}
}

func TestConfigAssembly(t *testing.T) {
	ids := vectorIdentities(t)
	ctrl, a := ids[0], ids[1]
	nwid := ztaddr.NewNetworkID(ctrl.Address(), 1)
	dict := bytes.Repeat([]byte("0123456789abcdef"), 2000) // 32000 bytes: 4 chunks
	chunks, err := SplitConfig(dict, nwid, 42, ctrl)
	if err != nil || len(chunks) != 4 {
		t.Fatalf("%d chunks: %v", len(chunks), err)
	}
	var asm ConfigAssembler
	order := []int{2, 0, 2, 3, 1}
	for i, n := range order {
		c, err := ParseConfigChunk(chunks[n].Append(nil))
		if err != nil {
			t.Fatal(err)
		}
		got, id, err := asm.Add(c, ctrl.Address(), ctrl)
		if err != nil {
			t.Fatal(err)
		}
		if (got != nil) != (i == len(order)-1) {
			t.Fatalf("after chunk %d: complete=%v", n, got != nil)
		}
		if got != nil && (!bytes.Equal(got, dict) || id != 42) {
			t.Fatal("assembled config differs")
		}
	}
	forged := *chunks[0]
	forged.Data = []byte("X" + string(forged.Data[1:]))
	if _, _, err := asm.Add(&forged, ctrl.Address(), ctrl); !errors.Is(err, ErrConfigChunk) {
		t.Errorf("forged chunk: %v", err)
	}
	bad := *chunks[0]
	bad.TotalLength = 10
	if _, _, err := asm.Add(&bad, ctrl.Address(), ctrl); !errors.Is(err, ErrConfigChunk) {
		t.Errorf("chunk beyond total: %v", err)
	}
	legacy := &ConfigChunk{NetworkID: nwid, Data: []byte("v=6"), Legacy: true}
	if _, _, err := asm.Add(legacy, a.Address(), ctrl); !errors.Is(err, ErrConfigChunk) {
		t.Errorf("legacy chunk from a non-controller: %v", err)
	}
	if got, _, err := asm.Add(legacy, ctrl.Address(), ctrl); err != nil || string(got) != "v=6" {
		t.Errorf("legacy chunk from the controller: %q %v", got, err)
	}
	if err := chunks[1].Verify(a); !errors.Is(err, netconf.ErrWrongSigner) {
		t.Errorf("chunk verified by a non-controller: %v", err)
	}
}

func TestParseFrameDoesNotAllocate(t *testing.T) {
	payload := (&Frame{NetworkID: 1, EtherType: 0x0800, Data: make([]byte, 1400)}).Append(nil)
	if n := testing.AllocsPerRun(100, func() {
		f, err := ParseFrame(payload)
		if err != nil || len(f.Data) != 1400 {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%.1f allocations per FRAME", n)
	}
}
