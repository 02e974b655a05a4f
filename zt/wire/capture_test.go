package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// The lab behind lab-capture.pcap (see testdata/zt1/README.md).
var (
	labRoot    = ztaddr.Address(0xd9d826a223) // root and controller R
	labA       = ztaddr.Address(0x8604bca100)
	labB       = ztaddr.Address(0xd2007d3b7d)
	labNetwork = ztaddr.NetworkID(0xd9d826a22363a18e)
	labPaths   = map[ztaddr.Address]netip.AddrPort{
		labRoot: netip.MustParseAddrPort("192.0.2.1:19993"),
		labA:    netip.MustParseAddrPort("192.0.2.2:19994"),
		labB:    netip.MustParseAddrPort("192.0.2.10:19995"),
	}
	labIPv4 = map[ztaddr.Address]netip.Addr{
		labA: netip.MustParseAddr("10.147.17.128"),
		labB: netip.MustParseAddr("10.147.17.189"),
	}
)

func labIdentities(t *testing.T) map[ztaddr.Address]*identity.Identity {
	t.Helper()
	b, err := os.ReadFile("../testdata/zt1/identities.txt")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[ztaddr.Address]*identity.Identity{}
	for _, l := range strings.Fields(string(b)) {
		id, err := identity.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		ids[id.Address()] = id
	}
	return ids
}

// originalIV recovers the packet ID an AES-GMAC-SIV packet had before armor (the on-wire ID is
// encrypted), so that the packet can be armored again.
func originalIV(p Packet, k *Key) uint64 {
	var block [16]byte
	copy(block[:8], p[:8])
	copy(block[8:], p[idxMAC:idxVerb])
	k.k1.Decrypt(block[:], block[:])
	return binary.BigEndian.Uint64(block[:8])
}

// captureState is what the walk through the capture learns and checks along the way.
type captureState struct {
	t          *testing.T
	ids        map[ztaddr.Address]*identity.Identity
	keys       map[[2]ztaddr.Address]*Key
	sentIDs    map[uint64]ztaddr.Address // on-wire packet IDs seen, by sender
	verbs      map[string]int
	punches    map[[2]netip.AddrPort]bool // NAT-traversal datagrams RENDEZVOUS announced
	configs    []*netconf.NetworkConfig
	updateIDs  map[uint64]bool
	acks       int
	assembler  ConfigAssembler
	icmpEchoes int
	httpFromB  []byte
	arpFor     []netip.Addr
	coms       map[ztaddr.Address]*netconf.COM
}

func (s *captureState) key(a, b ztaddr.Address) *Key {
	if k, ok := s.keys[[2]ztaddr.Address{a, b}]; ok {
		return k
	}
	src, dst := s.ids[a], s.ids[b]
	if src == nil || dst == nil {
		s.t.Fatalf("packet between unknown nodes %s and %s", a, b)
	}
	raw, err := src.Agree(dst.Public())
	if err != nil {
		s.t.Fatal(err)
	}
	k := NewKey(raw)
	s.keys[[2]ztaddr.Address{a, b}], s.keys[[2]ztaddr.Address{b, a}] = k, k
	return k
}

func TestLabCapture(t *testing.T) {
	dgs, err := readPcap("../testdata/zt1/lab-capture.pcap")
	if err != nil {
		t.Fatal(err)
	}
	s := &captureState{t: t, ids: labIdentities(t), keys: map[[2]ztaddr.Address]*Key{}, sentIDs: map[uint64]ztaddr.Address{},
		verbs: map[string]int{}, punches: map[[2]netip.AddrPort]bool{}, updateIDs: map[uint64]bool{}, coms: map[ztaddr.Address]*netconf.COM{}}
	var reasm Reassembler
	for _, d := range dgs {
		switch Classify(d.payload) {
		case DatagramBeacon:
			s.verbs["beacon"]++
			continue
		case DatagramFragment:
			p, ok, err := reasm.AddFragment(Fragment(append([]byte{}, d.payload...)))
			if err != nil {
				t.Fatalf("frame %d: %v", d.index, err)
			}
			s.verbs["fragment"]++
			if ok {
				s.packet(d, p, false)
			}
			continue
		case DatagramJunk:
			// A node that learns a peer's address from RENDEZVOUS first sends a few junk bytes
			// there to open NAT state.
			if !s.punches[[2]netip.AddrPort{d.src, d.dst}] || len(d.payload) != 4 {
				t.Fatalf("frame %d: unexplained %d-byte datagram %s -> %s", d.index, len(d.payload), d.src, d.dst)
			}
			s.verbs["NAT punch"]++
			continue
		}
		p := Packet(append([]byte{}, d.payload...))
		if p.Fragmented() {
			if p, ok, err := reasm.AddHead(p); err != nil || !ok {
				s.verbs["fragment head"]++
				continue
			} else {
				s.packet(d, p, false)
			}
			continue
		}
		s.packet(d, p, true)
	}
	t.Logf("%d datagrams: %v", len(dgs), s.verbs)

	// What the lab did (README): B joins, gets its config, sets up a direct path to A, pings
	// A three times, and serves two HTTP GETs to A.
	if len(s.configs) < 1 {
		t.Fatal("no network config in the capture")
	}
	for _, c := range s.configs {
		checkLabConfig(t, c, s.ids)
	}
	if s.acks == 0 {
		t.Error("no config acknowledgement (OK in re ECHO)")
	}
	if s.icmpEchoes != 3 {
		t.Errorf("%d ICMP echo requests from B to A, want 3", s.icmpEchoes)
	}
	if bodies := httpBodies(s.httpFromB); len(bodies) != 2 || bodies[0] != "hello" || len(bodies[1]) != 270 {
		t.Errorf("HTTP bodies from B: %q", bodies)
	}
	if len(s.arpFor) == 0 || s.arpFor[0] != labIPv4[labA] {
		t.Errorf("ARP requests by multicast: %v", s.arpFor)
	}
	if a, b := s.coms[labA], s.coms[labB]; a == nil || b == nil || !a.AgreesWith(b, s.ids[labB]) || !b.AgreesWith(a, s.ids[labA]) {
		t.Error("the members' pushed COMs do not agree with each other")
	}
	for _, v := range []string{"HELLO", "OK(HELLO)", "WHOIS", "OK(WHOIS)", "NETWORK_CONFIG_REQUEST", "OK(NETWORK_CONFIG_REQUEST)",
		"NETWORK_CONFIG", "MULTICAST_LIKE", "MULTICAST_GATHER", "OK(MULTICAST_GATHER)", "NETWORK_CREDENTIALS",
		"MULTICAST_FRAME", "OK(MULTICAST_FRAME)", "RENDEZVOUS", "ECHO", "OK(ECHO)", "PUSH_DIRECT_PATHS", "FRAME", "ERROR"} {
		if s.verbs[v] == 0 {
			t.Errorf("no %s in the capture", v)
		}
	}
}

// packet authenticates, decrypts and decodes one packet, and checks it re-encodes to the
// datagram it came from.
func (s *captureState) packet(d datagram, wireBytes Packet, single bool) {
	t := s.t
	orig := append(Packet{}, wireBytes...)
	p := wireBytes
	src, dst := p.Source(), p.Destination()
	// Physical path: direct at hops 0 (possibly towards the root to be relayed), from the root
	// when relayed.
	if p.Hops() == 0 {
		if d.src != labPaths[src] || (d.dst != labPaths[dst] && d.dst != labPaths[labRoot]) {
			t.Errorf("frame %d: %s->%s sent %s->%s", d.index, src, dst, d.src, d.dst)
		}
	} else if d.src != labPaths[labRoot] || d.dst != labPaths[dst] || p.Hops() != 1 {
		t.Errorf("frame %d: relayed %s->%s at hops %d sent %s->%s", d.index, src, dst, p.Hops(), d.src, d.dst)
	}
	k := s.key(src, dst)
	cipher := p.Cipher()
	if err := Dearmor(p, k); err != nil {
		t.Fatalf("frame %d: %s->%s cipher %d: %v", d.index, src, dst, cipher, err)
	}
	s.sentIDs[orig.ID()] = src
	verb := p.Verb()
	if verb == VerbHello {
		if cipher != CipherPoly1305None {
			t.Errorf("frame %d: HELLO with cipher %d", d.index, cipher)
		}
		if err := CryptHello(p, k); err != nil {
			t.Fatalf("frame %d: %v", d.index, err)
		}
	}
	plain, err := Decompress(nil, p)
	if err != nil {
		t.Fatalf("frame %d: %v", d.index, err)
	}
	msg, err := ParseMessage(verb, plain.Payload())
	if err != nil {
		t.Fatalf("frame %d: %s: %v", d.index, verb, err)
	}
	if got := msg.Append(nil); !bytes.Equal(got, plain.Payload()) {
		t.Fatalf("frame %d: %s re-encodes differently:\n got %x\nwant %x", d.index, verb, got, plain.Payload())
	}
	name := s.decode(d, src, dst, verb, msg)
	s.verbs[name]++

	// Rebuild the packet from the decoded message and armor it again: it must be the very
	// datagram that was captured (the packet ID is the random IV, which for AES-GMAC-SIV must
	// be recovered first).
	if !single {
		return
	}
	id := orig.ID()
	if cipher == CipherAESGMACSIV {
		id = originalIV(orig, k)
	}
	re := NewPacket(nil, id, dst, src, verb)
	re = Packet(msg.Append(re))
	if plain.Compressed() {
		t.Fatalf("frame %d: compression flag left set", d.index)
	}
	if orig.Hops() != 0 {
		re[idxFlags] = orig.Flags() & maskHops
	}
	compressed := wireBytes.Compressed()
	if compressed {
		re = Compress(nil, re)
		if !re.Compressed() {
			t.Errorf("frame %d: %s: our LZ4 does not compress what zerotier-one compressed", d.index, verb)
			return
		}
	}
	if verb == VerbHello {
		CryptHello(re, k)
	}
	Armor(re, k, cipher)
	if !bytes.Equal(re, orig) {
		t.Errorf("frame %d: %s (cipher %d, compressed %v) re-armors differently:\n got %x\nwant %x", d.index, verb, cipher, compressed, re, orig)
	}
}

// decode checks the meaning of each message and returns its name for the tally.
func (s *captureState) decode(d datagram, src, dst ztaddr.Address, verb Verb, msg Message) string {
	t := s.t
	switch m := msg.(type) {
	case *Hello:
		if !m.Identity.Equal(s.ids[src]) || m.ProtocolVersion != ProtocolVersion || m.Major != 1 || m.Minor != 14 || m.Revision != 1 {
			t.Errorf("frame %d: HELLO %+v", d.index, m)
		}
		if m.Destination.AddrPort != d.dst || m.PlanetID != 149604618 || m.PlanetTS != 1767225600000 {
			t.Errorf("frame %d: HELLO to %s planet %d/%d", d.index, m.Destination, m.PlanetID, m.PlanetTS)
		}
	case *OKMessage:
		s.checkInRe(d, dst, m.InReID)
		body, err := m.Decode()
		if err != nil {
			t.Fatalf("frame %d: OK(%s): %v", d.index, m.InReVerb, err)
		}
		if got := body.Append(nil); !bytes.Equal(got, m.Body) {
			t.Fatalf("frame %d: OK(%s) body re-encodes differently", d.index, m.InReVerb)
		}
		switch b := body.(type) {
		case *HelloOK:
			if b.PhysicalAddress.AddrPort != d.dst || b.ProtocolVersion != ProtocolVersion || len(b.Worlds) != 0 {
				t.Errorf("frame %d: OK(HELLO) %+v", d.index, b)
			}
		case *WhoisOK:
			for _, id := range b.Identities {
				if known := s.ids[id.Address()]; known == nil || !known.Equal(id) {
					t.Errorf("frame %d: OK(WHOIS) returned unknown identity %s", d.index, id)
				}
			}
		case *ConfigChunk:
			s.configChunk(d, src, b)
		case *GatherResult:
			if b.NetworkID != labNetwork || len(b.Members) == 0 {
				t.Errorf("frame %d: OK(GATHER) %+v", d.index, b)
			}
		case *MulticastFrameOK:
			if b.NetworkID != labNetwork || b.Flags != MulticastFlagGatherLimit {
				t.Errorf("frame %d: OK(MULTICAST_FRAME) %+v", d.index, b)
			}
		case Opaque:
			if m.InReVerb != VerbEcho {
				t.Errorf("frame %d: undecoded OK(%s)", d.index, m.InReVerb)
			}
			if len(b) > 0 { // the config acknowledgement quirk
				ack, err := ParseConfigAck(b)
				if err != nil || ack.NetworkID != labNetwork || !s.updateIDs[ack.UpdateID] {
					t.Errorf("frame %d: OK(ECHO) with %x: %v", d.index, []byte(b), err)
				}
				s.acks++
			}
		default:
			t.Errorf("frame %d: unexpected OK(%s)", d.index, m.InReVerb)
		}
		return "OK(" + m.InReVerb.String() + ")"
	case *ErrorMessage:
		s.checkInRe(d, dst, m.InReID)
		nwid, ok := m.NetworkID()
		if !ok || nwid != labNetwork || len(m.Data) != 8 {
			t.Errorf("frame %d: ERROR %+v", d.index, m)
		}
		switch {
		case m.InReVerb == VerbNetworkConfigRequest && (m.Code == ErrorNetworkAccessDenied || m.Code == ErrorObjectNotFound):
		case m.InReVerb == VerbMulticastFrame && m.Code == ErrorNeedMembershipCertificate:
		default:
			t.Errorf("frame %d: unexpected ERROR code %d in re %s", d.index, m.Code, m.InReVerb)
		}
	case *Whois:
		if len(m.Addresses) == 0 || dst != labRoot {
			t.Errorf("frame %d: WHOIS %v to %s", d.index, m.Addresses, dst)
		}
	case *ConfigRequest:
		md := m.MetadataDictionary()
		if m.NetworkID != labNetwork || md.Uint("v", 0) != 7 || md.Uint("pv", 0) != ProtocolVersion || md.Uint("revr", 0) != 1 {
			t.Errorf("frame %d: NETWORK_CONFIG_REQUEST %+v", d.index, m)
		}
		want := netconf.RequestMetadata(ProtocolVersion, 1, 14, 1, md.String("o"), "").Bytes()
		if !bytes.Equal(m.Metadata, want) {
			t.Errorf("frame %d: metadata differs from netconf.RequestMetadata:\n%q\n%q", d.index, m.Metadata, want)
		}
	case *ConfigChunk:
		s.configChunk(d, src, m)
	case *MulticastLike:
		for _, sub := range m.Subscriptions {
			if sub.NetworkID != labNetwork || !sub.Group.MAC.IsMulticast() {
				t.Errorf("frame %d: LIKE %v", d.index, sub)
			}
		}
	case *MulticastGather:
		if m.NetworkID != labNetwork || m.COM == nil || m.COM.Verify(s.ids[labRoot]) != nil || m.COM.IssuedTo() != src {
			t.Errorf("frame %d: GATHER %+v", d.index, m)
		}
	case *NetworkCredentials:
		if len(m.COMs) != 1 || m.COMs[0].Verify(s.ids[labRoot]) != nil || m.COMs[0].IssuedTo() != src || len(m.COOs) != 1 || m.COOs[0].Verify(s.ids[labRoot]) != nil {
			t.Errorf("frame %d: NETWORK_CREDENTIALS %+v", d.index, m)
		}
		if !m.COOs[0].Owns(labIPv4[src]) {
			t.Errorf("frame %d: COO does not list %s", d.index, labIPv4[src])
		}
		s.coms[src] = m.COMs[0]
	case *MulticastFrame:
		if m.NetworkID != labNetwork || m.Group.MAC != ztaddr.Broadcast || m.EtherType != ztaddr.EtherTypeARP {
			t.Errorf("frame %d: MULTICAST_FRAME %+v", d.index, m)
		}
		if g, ok := ztaddr.GroupForFrame(m.Group.MAC, m.EtherType, m.Data); !ok || g != m.Group {
			t.Errorf("frame %d: group %v does not match the ARP request inside (%v)", d.index, m.Group, g)
		}
		s.arpFor = append(s.arpFor, netip.AddrFrom4([4]byte(m.Data[24:28])))
	case *Rendezvous:
		if src != labRoot || m.Endpoint.AddrPort != labPaths[m.Peer] {
			t.Errorf("frame %d: RENDEZVOUS %+v", d.index, m)
		}
		s.punches[[2]netip.AddrPort{labPaths[dst], m.Endpoint.AddrPort}] = true
	case *PushDirectPaths:
		for _, p := range m.Paths {
			if p.Endpoint != labPaths[src] {
				t.Errorf("frame %d: PUSH_DIRECT_PATHS %s offers %v", d.index, src, p.Endpoint)
			}
		}
	case *Frame:
		if m.NetworkID != labNetwork {
			t.Errorf("frame %d: FRAME for %s", d.index, m.NetworkID)
		}
		s.ethernet(src, dst, m.EtherType, m.Data)
	case Opaque:
		if verb != VerbEcho {
			t.Errorf("frame %d: %s left undecoded", d.index, verb)
		}
	default:
		t.Errorf("frame %d: unexpected %s", d.index, verb)
	}
	return verb.String()
}

// checkInRe checks that a reply quotes the on-wire ID of a packet its recipient sent.
func (s *captureState) checkInRe(d datagram, requester ztaddr.Address, id uint64) {
	if sender, ok := s.sentIDs[id]; !ok || sender != requester {
		s.t.Errorf("frame %d: reply in re %016x, which %s did not send", d.index, id, requester)
	}
}

func (s *captureState) configChunk(d datagram, src ztaddr.Address, c *ConfigChunk) {
	t := s.t
	if src != labRoot || c.NetworkID != labNetwork {
		t.Errorf("frame %d: config chunk from %s for %s", d.index, src, c.NetworkID)
	}
	dict, updateID, err := s.assembler.Add(c, src, s.ids[labRoot])
	if err != nil {
		t.Fatalf("frame %d: %v", d.index, err)
	}
	if dict == nil {
		return
	}
	s.updateIDs[updateID] = true
	nc, err := netconf.ParseNetworkConfig(netconf.ParseDictionary(dict))
	if err != nil {
		t.Fatalf("frame %d: %v", d.index, err)
	}
	if got := nc.Dictionary().Bytes(); !bytes.Equal(got, dict) {
		t.Errorf("frame %d: config re-encodes differently:\n got %q\nwant %q", d.index, got, dict)
	}
	s.configs = append(s.configs, nc)
}

func checkLabConfig(t *testing.T, c *netconf.NetworkConfig, ids map[ztaddr.Address]*identity.Identity) {
	if c.NetworkID != labNetwork || c.IssuedTo != labB || c.MTU != 2800 || !c.IsPrivate() || c.Version != 7 {
		t.Errorf("config header %+v", c)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.147.17.189/24")}
	var v4 []netip.Prefix
	for _, p := range c.AssignedPrefixes() {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else if want6 := ztaddr.RFC4193(labNetwork, labB); p != want6 {
			t.Errorf("IPv6 address %s, want RFC4193 %s", p, want6)
		}
	}
	if !reflect.DeepEqual(v4, want) || len(c.AssignedPrefixes()) != 2 {
		t.Errorf("addresses %v", c.AssignedPrefixes())
	}
	if len(c.Routes) != 1 || c.Routes[0].Target.AddrPort != netip.MustParseAddrPort("10.147.17.0:24") || !c.Routes[0].Via.IsNil() {
		t.Errorf("routes %+v", c.Routes)
	}
	if len(c.Rules) != 1 || c.Rules[0].Type != netconf.ActionAccept {
		t.Errorf("rules %v", c.Rules)
	}
	if c.COM == nil || c.COM.Verify(ids[labRoot]) != nil || c.COM.IssuedTo() != labB || c.COM.Timestamp() != c.Timestamp {
		t.Errorf("COM %+v", c.COM)
	}
	if len(c.COOs) != 1 || c.COOs[0].Verify(ids[labRoot]) != nil || !c.COOs[0].Owns(labIPv4[labB]) {
		t.Errorf("COOs %+v", c.COOs)
	}
	if c.CredentialTimeMaxDelta != netconf.DefaultCredentialTimeMaxDelta || c.Flags&netconf.FlagIPv6NDPEmulation == 0 {
		t.Errorf("ctmd %d flags %x", c.CredentialTimeMaxDelta, c.Flags)
	}
}

// ethernet looks inside frames between the members: ICMP echo requests from B to A, and the
// bodies of HTTP responses B serves.
func (s *captureState) ethernet(src, dst ztaddr.Address, etherType uint16, data []byte) {
	if etherType != ztaddr.EtherTypeIPv4 || len(data) < 20 {
		return
	}
	ihl := int(data[0]&0x0f) * 4
	from, to := netip.AddrFrom4([4]byte(data[12:16])), netip.AddrFrom4([4]byte(data[16:20]))
	if from != labIPv4[src] || to != labIPv4[dst] {
		s.t.Errorf("IPv4 %s->%s inside a frame %s->%s", from, to, src, dst)
	}
	body := data[ihl:]
	switch data[9] {
	case 1: // ICMP
		if body[0] == 8 && src == labB && dst == labA {
			s.icmpEchoes++
		}
	case 6: // TCP
		if src == labB {
			s.httpFromB = append(s.httpFromB, body[int(body[12]>>4)*4:]...)
		}
	}
}

// httpBodies splits the bytes B's server sent into responses and returns their bodies.
func httpBodies(stream []byte) []string {
	var bodies []string
	for len(stream) > 0 {
		head, rest, ok := bytes.Cut(stream, []byte("\r\n\r\n"))
		if !ok || !bytes.HasPrefix(head, []byte("HTTP/1.")) {
			return append(bodies, "unparsed: "+string(stream))
		}
		n := 0
		for _, line := range strings.Split(string(head), "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "content-length") {
				fmt.Sscan(strings.TrimSpace(v), &n)
			}
		}
		n = min(n, len(rest))
		bodies, stream = append(bodies, string(rest[:n])), rest[n:]
	}
	return bodies
}
