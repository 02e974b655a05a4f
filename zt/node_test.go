package zt

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// arpRequest builds an ARP who-has for target from (mac, ip).
func arpRequest(mac [6]byte, ip, target netip.Addr) []byte {
	b := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	b = append(b, mac[:]...)
	b = append(b, ip.AsSlice()...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	return append(b, target.AsSlice()...)
}

// ipv4Packet builds a minimal IPv4 packet with the given protocol and payload.
func ipv4Packet(src, dst netip.Addr, proto byte, payload []byte) []byte {
	h := make([]byte, 20)
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	copy(h[12:], src.AsSlice())
	copy(h[16:], dst.AsSlice())
	return append(h, payload...)
}

// network sets up a controller node with a private network and two authorized members.
type twoMembers struct {
	*lab
	ctl      *testController
	a, b     *Node
	nwA, nwB *Network
	ipA, ipB netip.Addr
}

func newTwoMembers(t *testing.T, tweak func(*testController)) *twoMembers {
	return newTwoMembersOn(newLab(t), tweak)
}

func newTwoMembersOn(l *lab, tweak func(*testController)) *twoMembers {
	t := l.t
	s := &twoMembers{lab: l, ipA: netip.MustParseAddr("10.147.17.2"), ipB: netip.MustParseAddr("10.147.17.3")}
	s.ctl = newTestController(l.leaf(1), 1)
	if tweak != nil {
		tweak(s.ctl)
	}
	s.a, s.b = l.leaf(2), l.leaf(3)
	s.ctl.authorize(s.a.Address(), s.ipA.String())
	s.ctl.authorize(s.b.Address(), s.ipB.String())
	var err error
	if s.nwA, err = s.a.Join(s.ctl.nwid); err != nil {
		t.Fatal(err)
	}
	if s.nwB, err = s.b.Join(s.ctl.nwid); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, s.nwA, StatusOK)
	if len(st.Addresses) != 1 || st.Addresses[0] != netip.PrefixFrom(s.ipA, 24) {
		t.Fatalf("A's addresses = %v", st.Addresses)
	}
	waitStatus(t, s.nwB, StatusOK)
	return s
}

func TestFramesRelayedThenDirect(t *testing.T) {
	s := newTwoMembers(t, nil)
	sinkA, sinkB := attachSink(s.nwA), attachSink(s.nwB)
	macA, macB := s.nwA.MAC(), s.nwB.MAC()
	if macA != ztaddr.NodeMAC(s.a.Address(), s.ctl.nwid) {
		t.Fatalf("MAC %x is not derived from address and network", macA)
	}

	// ARP who-has B: a broadcast, found through the root's multicast gather, relayed by the
	// root to B, who learns A's identity with WHOIS meanwhile.
	if err := s.nwA.WriteFrame(ztaddr.Broadcast, macA, ztaddr.EtherTypeARP, arpRequest(macA, s.ipA, s.ipB)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to receive the ARP request", 5*time.Second, func() bool {
		_, ok := sinkB.find(func(f sunkFrame) bool {
			return f.etherType == ztaddr.EtherTypeARP && f.src == macA && f.dst == ztaddr.Broadcast
		})
		return ok
	})
	if s.b.parkedReplayed.Load() == 0 {
		t.Error("B never parked a packet from the unknown A")
	}
	reply := arpRequest(macB, s.ipB, s.ipA)
	reply[7] = 2
	if err := s.nwB.WriteFrame(macA, macB, ztaddr.EtherTypeARP, reply); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A to receive the ARP reply", 5*time.Second, func() bool {
		_, ok := sinkA.find(func(f sunkFrame) bool { return f.etherType == ztaddr.EtherTypeARP && f.src == macB && f.dst == macA })
		return ok
	})
	if s.root.Counters().Relayed == 0 {
		t.Error("the root relayed nothing")
	}

	// The root introduced A and B (RENDEZVOUS); they should now talk directly.
	waitFor(t, "a direct path between A and B", 10*time.Second, func() bool {
		return hasDirectPath(s.a, s.b) && hasDirectPath(s.b, s.a)
	})
	relayed := s.root.Counters().Relayed
	echo := ipv4Packet(s.ipA, s.ipB, 1, []byte{8, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'})
	for i := range 20 {
		echo[len(echo)-1] = byte(i)
		if err := s.nwA.WriteFrame(macB, macA, ztaddr.EtherTypeIPv4, echo); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "20 echo frames at B", 5*time.Second, func() bool {
		n := 0
		sinkB.mu.Lock()
		for _, f := range sinkB.frames {
			if f.etherType == ztaddr.EtherTypeIPv4 && f.src == macA && f.dst == macB && bytes.Contains(f.payload, []byte("pin")) {
				n++
			}
		}
		sinkB.mu.Unlock()
		return n == 20
	})
	if r := s.root.Counters().Relayed; r > relayed+2 {
		t.Errorf("root relayed %d more packets after the direct path was up", r-relayed)
	}
}

func TestIPv6Paths(t *testing.T) {
	s := newTwoMembersOn(newLabAt(t, "::1"), nil)
	sinkB := attachSink(s.nwB)
	frame := ipv4Packet(s.ipA, s.ipB, 17, make([]byte, 2000))
	for range 3 {
		s.nwA.WriteFrame(s.nwB.MAC(), s.nwA.MAC(), ztaddr.EtherTypeIPv4, frame)
	}
	waitFor(t, "a frame over IPv6", 5*time.Second, func() bool { return sinkB.count() > 0 })
	waitFor(t, "a direct IPv6 path", 10*time.Second, func() bool { return hasDirectPath(s.a, s.b) })
	for _, p := range s.a.Peers() {
		for _, x := range p.Paths {
			if !x.Address.Addr().Is6() {
				t.Errorf("peer %s has a non-IPv6 path %s", p.Address, x.Address)
			}
		}
	}
}

// TestDualStackSocket runs the lab on wildcard (dual-stack) sockets: IPv4 peers appear as
// v4-mapped addresses to the socket, and fragmented packets leave through sendmmsg with them.
func TestDualStackSocket(t *testing.T) {
	s := newTwoMembersOn(newLabAt(t, "::"), nil)
	sinkB := attachSink(s.nwB)
	payload := make([]byte, 2800)
	for range 3 {
		s.nwA.WriteFrame(s.nwB.MAC(), s.nwA.MAC(), 0x88b5, payload)
	}
	waitFor(t, "a fragmented frame", 5*time.Second, func() bool { return sinkB.count() > 0 })
	waitFor(t, "a direct path", 10*time.Second, func() bool { return hasDirectPath(s.a, s.b) })
}

func hasDirectPath(from, to *Node) bool {
	for _, p := range from.Peers() {
		if p.Address != to.Address() {
			continue
		}
		for _, x := range p.Paths {
			if x.Active && x.Address.Port() == uint16(to.Port()) {
				return true
			}
		}
	}
	return false
}

func TestBigFramesFragmented(t *testing.T) {
	for _, mtu := range []int{2800, 9000} {
		t.Run("mtu"+strconv.Itoa(mtu), func(t *testing.T) {
			s := newTwoMembers(t, func(c *testController) { c.mtu = mtu })
			if got := s.nwA.MTU(); got != mtu {
				t.Fatalf("MTU = %d, want %d", got, mtu)
			}
			sinkB := attachSink(s.nwB)
			payload := make([]byte, mtu)
			for i := range payload {
				payload[i] = byte(i * 7)
			}
			before := s.a.Counters().PacketsOut
			// The first frames may wait for WHOIS; send a few and expect at least one.
			for range 3 {
				if err := s.nwA.WriteFrame(s.nwB.MAC(), s.nwA.MAC(), 0x88b5, payload); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the big frame at B", 5*time.Second, func() bool {
				_, ok := sinkB.find(func(f sunkFrame) bool { return f.etherType == 0x88b5 && bytes.Equal(f.payload, payload) })
				return ok
			})
			perFrame := wire.FragmentCount(wire.HeaderSize+wire.FrameHeaderSize+mtu, physicalMTU)
			if d := s.a.Counters().PacketsOut - before; perFrame < 2 || d < 3*uint64(perFrame) {
				t.Errorf("only %d datagrams went out for 3 frames of %d bytes", d, mtu)
			}
		})
	}
}

// TestWriteFramesBatched: a batch of frames of mixed sizes (fragmented and not, as a stack
// cutting a large TCP segment produces them) arrives complete and in order, and every burst
// of delivered frames is ended.
func TestWriteFramesBatched(t *testing.T) {
	s := newTwoMembers(t, nil)
	waitFor(t, "a direct path", 10*time.Second, func() bool {
		s.nwA.WriteFrame(s.nwB.MAC(), s.nwA.MAC(), 0x88b5, []byte("hello"))
		return hasDirectPath(s.a, s.b)
	})
	var mu sync.Mutex
	var got [][]byte
	delivered, ended := 0, 0
	s.nwB.SetReceiver(func(dst, src [6]byte, et uint16, p []byte) {
		mu.Lock()
		if et == 0x88b6 {
			got = append(got, append([]byte(nil), p...))
		}
		delivered++
		mu.Unlock()
	})
	s.nwB.SetBurstEnd(func() {
		mu.Lock()
		ended = delivered
		mu.Unlock()
	})
	var frames, want [][]byte
	for i, size := range []int{2800, 2800, 2800, 60, 1400, 2800, 1, 2000, 2800, 2800} {
		payload := make([]byte, size)
		for j := range payload {
			payload[j] = byte(i + j*3)
		}
		dst, src := s.nwB.MAC(), s.nwA.MAC()
		f := append(append(append([]byte(nil), dst[:]...), src[:]...), 0x88, 0xb6)
		frames, want = append(frames, append(f, payload...)), append(want, payload)
	}
	if err := s.nwA.WriteFrames(frames); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the batch at B", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(want) && ended == delivered
	})
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d: %d bytes, want %d (order or content differs)", i, len(got[i]), len(want[i]))
		}
	}
	if err := s.nwA.WriteFrames([][]byte{{1, 2, 3}}); err == nil {
		t.Errorf("a frame without an Ethernet header was accepted")
	}
}

func TestNonMemberFramesDropped(t *testing.T) {
	s := newTwoMembers(t, nil)
	sinkA := attachSink(s.nwA)
	x := s.leaf(4)
	nwX, err := x.Join(s.ctl.nwid)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, nwX, StatusAccessDenied)

	// X sends frames anyway, first bare, then with a COM it made up itself.
	frame := &wire.Frame{NetworkID: s.ctl.nwid, EtherType: ztaddr.EtherTypeIPv4,
		Data: ipv4Packet(netip.MustParseAddr("10.147.17.66"), s.ipA, 17, []byte("intruder"))}
	x.sendMsg(s.a.Address(), wire.VerbFrame, frame, 0)
	waitFor(t, "A to drop the non-member's frame", 5*time.Second, func() bool {
		return s.nwA.Counters().Drops["not-member"] >= 1
	})
	forged := netconf.NewCOM(time.Now().UnixMilli(), netconf.DefaultCredentialTimeMaxDelta, s.ctl.nwid, x.Identity())
	if err := forged.Sign(x.Identity()); err != nil {
		t.Fatal(err)
	}
	x.sendMsg(s.a.Address(), wire.VerbNetworkCredentials, &wire.NetworkCredentials{COMs: []*netconf.COM{forged}}, 0)
	time.Sleep(100 * time.Millisecond)
	x.sendMsg(s.a.Address(), wire.VerbFrame, frame, 0)
	waitFor(t, "A to refuse the forged COM and drop again", 5*time.Second, func() bool {
		c := s.nwA.Counters()
		return c.Drops["not-member"] >= 2 && c.Drops["bad-credential"] >= 1
	})
	if _, ok := sinkA.find(func(f sunkFrame) bool { return bytes.Contains(f.payload, []byte("intruder")) }); ok {
		t.Fatal("A delivered a non-member's frame")
	}

	// A member's frame still gets through.
	if err := s.nwB.WriteFrame(s.nwA.MAC(), s.nwB.MAC(), ztaddr.EtherTypeIPv4, ipv4Packet(s.ipB, s.ipA, 17, []byte("member"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the member's frame", 5*time.Second, func() bool {
		_, ok := sinkA.find(func(f sunkFrame) bool { return bytes.Contains(f.payload, []byte("member")) })
		return ok
	})
}

// TestFrameBeforeCredentialsReplayed: a member's frame that arrives before its credentials
// waits for them instead of being dropped, and is not counted as a not-member drop.
func TestFrameBeforeCredentialsReplayed(t *testing.T) {
	s := newTwoMembers(t, nil)
	sinkA := attachSink(s.nwA)
	y := s.leaf(5)
	ipY := netip.MustParseAddr("10.147.17.5")
	s.ctl.authorize(y.Address(), ipY.String())
	nwY, err := y.Join(s.ctl.nwid)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, nwY, StatusOK)

	// Straight to A with no credentials pushed first: A asks Y for them and Y pushes.
	frame := &wire.Frame{NetworkID: s.ctl.nwid, EtherType: ztaddr.EtherTypeIPv4,
		Data: ipv4Packet(ipY, s.ipA, 17, []byte("early"))}
	y.sendMsg(s.a.Address(), wire.VerbFrame, frame, 0)
	waitFor(t, "the early frame", 5*time.Second, func() bool {
		_, ok := sinkA.find(func(f sunkFrame) bool { return bytes.Contains(f.payload, []byte("early")) })
		return ok
	})
	time.Sleep(time.Duration(2*fastTiming.deferred) * time.Millisecond)
	if d := s.nwA.Counters().Drops["not-member"]; d != 0 {
		t.Errorf("%d not-member drops for a frame that was delivered", d)
	}
}

func TestConfigChunksWithBadSignatureRefused(t *testing.T) {
	s := newTwoMembers(t, nil)
	x := s.leaf(4)
	before := s.nwA.State()

	// A config for A, signed by X instead of the controller.
	nc := s.ctl.config(s.a.Identity(), netip.MustParseAddr("10.147.17.99"))
	dict := nc.Dictionary().Bytes()
	chunks, err := wire.SplitConfig(dict, s.ctl.nwid, 77, x.Identity())
	if err != nil {
		t.Fatal(err)
	}
	x.sendMsg(s.a.Address(), wire.VerbNetworkConfig, chunks[0], 0)

	// A config properly signed by the controller, then altered.
	chunks, err = wire.SplitConfig(dict, s.ctl.nwid, 78, s.ctl.node.Identity())
	if err != nil {
		t.Fatal(err)
	}
	chunks[0].Data = bytes.Replace(chunks[0].Data, []byte("n=lab"), []byte("n=bad"), 1)
	s.ctl.node.sendMsg(s.a.Address(), wire.VerbNetworkConfig, chunks[0], 0)

	waitFor(t, "both chunks refused", 5*time.Second, func() bool {
		return s.nwA.Counters().Drops["bad-credential"] >= 2
	})
	if after := s.nwA.State(); after.Addresses[0] != before.Addresses[0] || after.Name != "lab" {
		t.Fatalf("a refused config was applied: %+v", after)
	}
}

func TestConfigPushAndRefresh(t *testing.T) {
	l := newLab(t)
	ctl := newTestController(l.leaf(1), 1)
	a := l.node(homeWith(t, l.ids[2]), nil)
	a.t.configRefresh = 400
	a.Start()
	ctl.authorize(a.Address(), "10.147.17.2")
	nw, err := a.Join(ctl.nwid)
	if err != nil {
		t.Fatal(err)
	}
	changes := nw.Notify()
	waitStatus(t, nw, StatusOK)
	<-changes

	// Refresh: the member keeps asking while it has a config.
	n0 := ctl.requestCount(a.Address())
	waitFor(t, "periodic config refreshes", 5*time.Second, func() bool { return ctl.requestCount(a.Address()) >= n0+2 })

	// Push: the controller changes the member's address and sends the config unasked.
	ctl.authorize(a.Address(), "10.147.17.42")
	ctl.mu.Lock()
	ctl.revision++
	ctl.mu.Unlock()
	ctl.push(a.Address())
	waitFor(t, "the pushed address", 5*time.Second, func() bool {
		st := nw.State()
		return len(st.Addresses) == 1 && st.Addresses[0] == netip.MustParsePrefix("10.147.17.42/24")
	})
	select {
	case <-changes:
	case <-time.After(time.Second):
		t.Fatal("no change notification for the pushed config")
	}
}

func TestAccessDeniedNotFoundThenAuthorized(t *testing.T) {
	l := newLab(t)
	ctl := newTestController(l.leaf(1), 1)
	a := l.leaf(2)
	nw, err := a.Join(ctl.nwid)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, nw, StatusAccessDenied)
	ctl.authorize(a.Address(), "10.147.17.2")
	waitStatus(t, nw, StatusOK)

	other, err := a.Join(ztaddr.NewNetworkID(ctl.node.Address(), 99))
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, other, StatusNotFound)
}

func TestRestartReusesIdentityAndCachedConfig(t *testing.T) {
	l := newLab(t)
	ctlNode := l.leaf(1)
	ctl := newTestController(ctlNode, 1)
	home := t.TempDir() // empty: the node makes its identity
	a := l.node(home, nil)
	a.Start()
	info, err := os.Stat(home + "/identity.secret")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("identity.secret: %v, %v", info, err)
	}
	if b, err := os.ReadFile(home + "/identity.public"); err != nil || string(b) != a.Identity().String() {
		t.Fatalf("identity.public = %q, %v", b, err)
	}
	ctl.authorize(a.Address(), "10.147.17.7")
	nw, err := a.Join(ctl.nwid)
	if err != nil {
		t.Fatal(err)
	}
	want := waitStatus(t, nw, StatusOK)
	port := a.Port()
	a.Close()
	ctlNode.Close() // the controller is gone: only the cache can configure the restarted node

	a2 := l.node(home, func(c *Config) { c.Port = port })
	if a2.Address() != a.Address() {
		t.Fatalf("address changed across restart: %s -> %s", a.Address(), a2.Address())
	}
	if a2.topo.peer(ctlNode.Address()) == nil {
		t.Error("the restarted node does not know the controller from its peer cache")
	}
	nw2, err := a2.Join(ctl.nwid)
	if err != nil {
		t.Fatal(err)
	}
	got := nw2.State()
	if got.Status != StatusOK || len(got.Addresses) != 1 || got.Addresses[0] != want.Addresses[0] {
		t.Fatalf("after restart: %+v, want the cached config %v", got, want.Addresses)
	}
	if a2.Port() != port {
		t.Errorf("port %d, want %d", a2.Port(), port)
	}
	a2.Start()
	if err := a2.Leave(ctl.nwid); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(home + "/networks.d/" + ctl.nwid.String() + ".conf"); !os.IsNotExist(err) {
		t.Fatalf("Leave kept the cached config: %v", err)
	}
}

func TestRulesEnforcedBothWays(t *testing.T) {
	// Drop UDP, accept the rest.
	rules := []netconf.Rule{
		netconf.NewRule(netconf.MatchIPProtocol, []byte{17}), netconf.Action(netconf.ActionDrop),
		netconf.Action(netconf.ActionAccept),
	}
	s := newTwoMembers(t, func(c *testController) { c.rules = rules })
	sinkB := attachSink(s.nwB)
	udp := ipv4Packet(s.ipA, s.ipB, 17, []byte("udp"))
	tcp := ipv4Packet(s.ipA, s.ipB, 6, []byte("tcp-tcp-tcp-tcp-tcp"))
	for range 3 {
		s.nwA.WriteFrame(s.nwB.MAC(), s.nwA.MAC(), ztaddr.EtherTypeIPv4, udp)
		s.nwA.WriteFrame(s.nwB.MAC(), s.nwA.MAC(), ztaddr.EtherTypeIPv4, tcp)
	}
	waitFor(t, "the TCP frame", 5*time.Second, func() bool {
		_, ok := sinkB.find(func(f sunkFrame) bool { return bytes.Contains(f.payload, []byte("tcp-tcp")) })
		return ok
	})
	if got := s.nwA.Counters().Drops["rules-out"]; got != 3 {
		t.Errorf("A dropped %d UDP frames outbound, want 3", got)
	}
	// A peer that ignores the rules: B must still drop its UDP.
	s.a.sendMsg(s.b.Address(), wire.VerbFrame, &wire.Frame{NetworkID: s.ctl.nwid, EtherType: ztaddr.EtherTypeIPv4, Data: udp}, 0)
	waitFor(t, "B to drop inbound UDP", 5*time.Second, func() bool { return s.nwB.Counters().Drops["rules-in"] >= 1 })
	if _, ok := sinkB.find(func(f sunkFrame) bool { return bytes.Contains(f.payload, []byte("udp")) }); ok {
		t.Fatal("B delivered a frame its rules drop")
	}
}

func TestNodeRefusesMissingHome(t *testing.T) {
	if _, err := NewNode(context.Background(), Config{}); err == nil {
		t.Fatal("NewNode without a home succeeded")
	}
}

func TestIdentityCollision(t *testing.T) {
	l := newLab(t)
	a := l.leaf(1)
	waitFor(t, "A online", 10*time.Second, a.Online)
	// Another key pair claiming A's address (it cannot pass the address derivation, but the
	// collision is caught before that check).
	pub, priv, err := identity.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := identity.New(a.Address(), pub, &priv)
	if err != nil {
		t.Fatal(err)
	}
	x := l.node(homeWith(t, forged), nil)
	x.Start()
	waitFor(t, "the root to refuse the colliding HELLO", 5*time.Second, func() bool {
		return l.root.Counters().Drops["identity"] >= 1
	})
	time.Sleep(200 * time.Millisecond)
	if x.Online() {
		t.Fatal("the impostor came online")
	}
}

// A node restarted with a cached config shows it at once, but keeps asking the controller
// every few seconds until it answers: here the first request comes too soon after the last
// one and is ignored, and the member has been deauthorized meanwhile.
func TestCachedConfigRecheckedAfterRestart(t *testing.T) {
	l := newLab(t)
	ctl := newTestController(l.leaf(1), 1)
	ctl.minInterval = 1000
	home := homeWith(t, l.ids[2])
	a := l.node(home, nil)
	a.Start()
	ctl.authorize(a.Address(), "10.147.17.2")
	nw, err := a.Join(ctl.nwid)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, nw, StatusOK)
	a.Close()
	ctl.deauthorize(a.Address())

	a2 := l.node(home, nil)
	a2.Start()
	nw2, err := a2.Join(ctl.nwid)
	if err != nil {
		t.Fatal(err)
	}
	if st := nw2.State().Status; st != StatusOK {
		t.Fatalf("cached config not applied: %v", st)
	}
	waitStatus(t, nw2, StatusAccessDenied) // within seconds, not a refresh period
}

// A peer restarted on another port (without its peer cache) reaches us through the root; we
// must stop answering to its old direct path and not wait for that path to time out.
func TestPeerRestartedOnNewPort(t *testing.T) {
	s := newTwoMembers(t, nil)
	sinkA := attachSink(s.nwA)
	s.nwA.WriteFrame(s.nwB.MAC(), s.nwA.MAC(), 0x88b5, []byte("hi"))
	s.nwB.WriteFrame(s.nwA.MAC(), s.nwB.MAC(), 0x88b5, []byte("hi"))
	waitFor(t, "a direct path", 10*time.Second, func() bool { return hasDirectPath(s.a, s.b) && hasDirectPath(s.b, s.a) })
	homeB := s.b.cfg.Home
	s.b.Close()
	os.RemoveAll(homeB + "/peers.d")
	os.Mkdir(homeB+"/peers.d", 0o700)
	time.Sleep(2500 * time.Millisecond) // longer than staleAfterRelayed

	b2 := s.node(homeB, nil)
	b2.Start()
	nwB2, err := b2.Join(s.ctl.nwid)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, nwB2, StatusOK)
	sinkB2 := attachSink(nwB2)
	start := time.Now()
	waitFor(t, "A to hear from restarted B", 5*time.Second, func() bool {
		nwB2.WriteFrame(s.nwA.MAC(), nwB2.MAC(), 0x88b5, []byte("back"))
		time.Sleep(50 * time.Millisecond)
		_, ok := sinkA.find(func(f sunkFrame) bool { return string(f.payload) == "back" })
		return ok
	})
	waitFor(t, "restarted B to hear from A", 5*time.Second, func() bool {
		s.nwA.WriteFrame(nwB2.MAC(), s.nwA.MAC(), 0x88b5, []byte("welcome"))
		time.Sleep(50 * time.Millisecond)
		_, ok := sinkB2.find(func(f sunkFrame) bool { return string(f.payload) == "welcome" })
		return ok
	})
	t.Logf("both ways after %v", time.Since(start))
}
