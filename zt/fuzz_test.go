package zt

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

func FuzzPeerCache(f *testing.F) {
	ids := testIdentities(f)
	good := (&cachedPeer{id: ids[1].Public(), saved: 1700000000000, paths: []netip.AddrPort{
		netip.MustParseAddrPort("198.51.100.1:9993"), netip.MustParseAddrPort("[2001:db8::1]:9993")}}).append(nil)
	f.Add(good)
	f.Add(good[:40])
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCachedPeer(b)
		if err != nil {
			return
		}
		again, err := parseCachedPeer(c.append(nil))
		if err != nil || !again.id.Equal(c.id) || again.saved != c.saved || len(again.paths) != len(c.paths) {
			t.Fatalf("re-encoding changed the entry: %v", err)
		}
	})
}

// fuzzTarget is a node that has joined a private network, and a known peer (a member with
// its own COM) whose packets the fuzzer writes: they authenticate, so they reach every
// handler.
type fuzzTarget struct {
	n      *Node
	nw     *Network
	member *peer
	memKey *wire.Key
	com    *netconf.COM
}

func newFuzzTarget(t testing.TB) *fuzzTarget {
	ids := testIdentities(t)
	me, ctrl, member := ids[1], ids[2], ids[3]
	// The root the node knows is on loopback: whatever the inputs provoke (WHOIS, HELLO) stays
	// on this machine.
	pub, priv, err := identity.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	planet := loopbackPlanet(t, ids[0], netip.MustParseAddrPort("127.0.0.1:9"), pub, &priv)
	n, err := NewNode(context.Background(), Config{Home: homeWith(t, me), Port: PortAny, Planet: planet.Bytes(),
		Bind: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, AllowLoopback: true, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	nwid := ztaddr.NewNetworkID(ctrl.Address(), 1)
	if _, _, err := n.topo.addPeer(ctrl); err != nil {
		t.Fatal(err)
	}
	pr, _, err := n.topo.addPeer(member)
	if err != nil {
		t.Fatal(err)
	}
	nw, err := n.Join(nwid)
	if err != nil {
		t.Fatal(err)
	}
	c := &testController{node: &Node{id: ctrl}, nwid: nwid, revision: 1, mtu: 2800,
		rules: []netconf.Rule{netconf.Action(netconf.ActionAccept)}}
	nc := c.config(me, netip.MustParseAddr("10.0.0.1"))
	if err := nw.applyConfig(nc.Dictionary().Bytes(), true); err != nil {
		t.Fatal(err)
	}
	memberCOM := c.config(member, netip.MustParseAddr("10.0.0.2")).COM
	k, _ := member.Agree(me)
	return &fuzzTarget{n: n, nw: nw, member: pr, memKey: wire.NewKey(k), com: memberCOM}
}

// packet builds an armored packet from the member.
func (ft *fuzzTarget) packet(verb wire.Verb, payload []byte, cipher wire.Cipher, compress bool, id uint64) []byte {
	p := wire.NewPacket(nil, id, ft.n.addr, ft.member.addr, verb)
	p = append(p, payload...)
	if compress {
		p = wire.Compress(nil, p)
	}
	p.SetFragmented(len(p) > physicalMTU)
	wire.Armor(p, ft.memKey, cipher)
	return p
}

// FuzzReceive feeds a hostile member's packet sequences through the receive path: each record
// is [1] mode [1] verb [2] length [length] payload. The low bits of mode choose the cipher,
// 0x04 compresses, 0x08 sends the bytes raw (unarmored: junk, fragments, forged headers),
// 0x10 fragments the armored packet. Nothing may panic, and every queue stays bounded.
func FuzzReceive(f *testing.F) {
	ft := newFuzzTarget(f)
	rec := func(mode, verb byte, payload []byte) []byte {
		b := []byte{mode, verb, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(len(payload)))
		return append(b, payload...)
	}
	nwid := ft.nw.id
	frame := (&wire.Frame{NetworkID: nwid, EtherType: 0x0800, Data: bytes.Repeat([]byte{0x45}, 40)}).Append(nil)
	creds := (&wire.NetworkCredentials{COMs: []*netconf.COM{ft.com}}).Append(nil)
	like := (&wire.MulticastLike{Subscriptions: []wire.Subscription{{NetworkID: nwid, Group: ztaddr.MulticastGroup{MAC: ztaddr.Broadcast, ADI: 7}}}}).Append(nil)
	gather := (&wire.MulticastGather{NetworkID: nwid, Group: ztaddr.MulticastGroup{MAC: ztaddr.Broadcast}, Limit: 5}).Append(nil)
	mframe := (&wire.MulticastFrame{NetworkID: nwid, Flags: wire.MulticastFlagGatherLimit, GatherLimit: 3,
		Group: ztaddr.MulticastGroup{MAC: ztaddr.Broadcast}, EtherType: 0x0806, Data: make([]byte, 28)}).Append(nil)
	push := (&wire.PushDirectPaths{Paths: []wire.PathRecord{wire.NewPathRecord(netip.MustParseAddrPort("127.0.0.1:9"))}}).Append(nil)
	f.Add(append(rec(3, byte(wire.VerbNetworkCredentials), creds), rec(3, byte(wire.VerbFrame), frame)...))
	f.Add(append(rec(1, byte(wire.VerbFrame), frame), rec(1|4, byte(wire.VerbNetworkCredentials), creds)...))
	f.Add(append(rec(3, byte(wire.VerbMulticastLike), like), rec(3, byte(wire.VerbMulticastGather), gather)...))
	f.Add(rec(3|0x10, byte(wire.VerbMulticastFrame), append(mframe, make([]byte, 3000)...)))
	f.Add(rec(3, byte(wire.VerbPushDirectPaths), push))
	f.Add(rec(3, byte(wire.VerbEcho), []byte("hello")))
	f.Add(rec(3, byte(wire.VerbWhois), []byte{1, 2, 3, 4, 5}))
	f.Add(rec(8, 0, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0xff, 0x31, 0, 1, 2, 3}))
	f.Add(rec(3, byte(wire.VerbOK), []byte{byte(wire.VerbWhois), 1, 2, 3, 4, 5, 6, 7, 8}))
	f.Add(rec(3, byte(wire.VerbError), []byte{byte(wire.VerbNetworkConfigRequest), 1, 2, 3, 4, 5, 6, 7, 8, 7, 0, 0, 0, 0, 0, 0, 0, 1}))
	from := netip.MustParseAddrPort("127.0.0.1:9")
	s := ft.n.socks[0]
	var id uint64
	f.Fuzz(func(t *testing.T, in []byte) {
		ft.reset()
		var rx rxBuffers
		for len(in) >= 4 {
			mode, verb, n := in[0], wire.Verb(in[1]), int(binary.BigEndian.Uint16(in[2:]))
			in = in[4:]
			if n > len(in) {
				n = len(in)
			}
			payload := in[:n]
			in = in[n:]
			if mode&0x08 != 0 {
				ft.n.receive(s, from, append([]byte(nil), payload...), &rx)
				continue
			}
			id++
			p := ft.packet(verb, payload, wire.Cipher(mode&3), mode&0x04 != 0, id)
			if mode&0x10 != 0 && len(p) > physicalMTU {
				wire.Fragments(p, physicalMTU, func(d []byte) error {
					ft.n.receive(s, from, append([]byte(nil), d...), &rx)
					return nil
				})
				continue
			}
			ft.n.receive(s, from, p, &rx)
		}
		ft.checkBounded(t)
	})
}

// reset forgets what earlier inputs left behind, so that each input runs alike.
func (ft *fuzzTarget) reset() {
	n := ft.n
	n.whoisMu.Lock()
	n.txQueue, n.whois, n.parked = nil, map[ztaddr.Address]*whoisWait{}, 0
	clear(n.queuedFor)
	n.queued.Store(0)
	n.whoisMu.Unlock()
	n.reasmMu.Lock()
	n.reasm = wire.Reassembler{}
	n.reasmMu.Unlock()
	for i := range n.expecting {
		n.expecting[i].Store(0)
	}
	n.mcast = newMulticaster()
	ft.nw.deferMu.Lock()
	ft.nw.deferred = nil
	ft.nw.deferMu.Unlock()
	ft.nw.membersMu.Lock()
	clear(ft.nw.members)
	ft.nw.membersMu.Unlock()
	ft.member.paths = nil
	ft.member.pathsIn = rateWindow{}
	ft.member.credentialsIn = rateWindow{}
	for len(n.validateQ) > 0 {
		n.doneValidating((<-n.validateQ).peer.addr)
	}
}

func (ft *fuzzTarget) checkBounded(t *testing.T) {
	n := ft.n
	n.whoisMu.Lock()
	q, w := len(n.txQueue), len(n.whois)
	n.whoisMu.Unlock()
	ft.nw.deferMu.Lock()
	d := len(ft.nw.deferred)
	ft.nw.deferMu.Unlock()
	n.mcast.mu.Lock()
	g := len(n.mcast.groups)
	n.mcast.mu.Unlock()
	if q > maxQueued || w > maxWhoisPending || n.parked > maxParked || d > maxDeferred || g > maxGroupsTotal || len(n.validateQ) > validateQueueLength {
		t.Fatalf("unbounded state: queue %d whois %d deferred %d groups %d", q, w, d, g)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
