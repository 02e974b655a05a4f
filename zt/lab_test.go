package zt

import (
	"bufio"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// An in-process lab: a root and leaves on 127.0.0.1 (loopback paths allowed), each with its
// own home, talking over real UDP. Identities come from the zt1 vectors so that no test
// waits for identity generation.

var fastTiming = timing{
	tick:          50 * time.Millisecond,
	pingCheck:     500,
	configRetry:   300,
	configRefresh: 60000,
	likePeriod:    60000,
	gatherPeriod:  60000,
	housekeeping:  30000,
	whoisRetry:    200,
	queueTimeout:  5000,
	deferred:      1000,
	credentials:   500000,
}

func testIdentities(t testing.TB) []*identity.Identity {
	f, err := os.Open("testdata/zt1/identities.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []*identity.Identity
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			id, err := identity.Parse(line)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	return ids
}

func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("ZT_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// homeWith makes a home directory holding id.
func homeWith(t testing.TB, id *identity.Identity) string {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/identity.secret", []byte(id.SecretString()), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

type lab struct {
	t      testing.TB
	ids    []*identity.Identity
	root   *Node
	planet []byte
	bind   netip.Addr
}

// newLab starts a root (identity 0) on 127.0.0.1 serving a fresh planet that names it.
func newLab(t testing.TB) *lab { return newLabAt(t, "127.0.0.1") }

// newLabAt is newLab on another loopback address (::1 for IPv6 paths).
func newLabAt(t testing.TB, bind string) *lab {
	l := &lab{t: t, ids: testIdentities(t), bind: netip.MustParseAddr(bind)}
	at := l.bind
	if at.IsUnspecified() {
		at = netip.MustParseAddr("127.0.0.1")
	}
	pub, priv, err := identity.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	// The root's port is known once it is bound: it starts on a planet naming it at port 9
	// of the loopback address, then gets the planet with its real port (no test node ever
	// holds ZeroTier's public planet).
	l.planet = loopbackPlanet(t, l.ids[0], netip.AddrPortFrom(at, 9), pub, &priv).Bytes()
	l.root = l.node(homeWith(t, l.ids[0]), nil)
	w := loopbackPlanet(t, l.ids[0], netip.AddrPortFrom(at, uint16(l.root.Port())), pub, &priv)
	l.planet = w.Bytes()
	forcePlanet(t, l.root, w)
	if !l.root.IsRoot() {
		t.Fatal("root node is not in root mode")
	}
	l.root.Start()
	return l
}

// loopbackPlanet makes a planet whose one root is root at ep (a loopback address), signed
// with the given key pair.
func loopbackPlanet(t testing.TB, root *identity.Identity, ep netip.AddrPort, pub identity.PublicKey, priv *identity.PrivateKey) *world.World {
	t.Helper()
	w, err := world.New(world.TypePlanet, 1234567, uint64(time.Now().UnixMilli()), pub,
		[]world.Root{{Identity: root.Public(), StableEndpoints: []ztaddr.InetAddress{ztaddr.InetAddressOf(ep)}}}, priv)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// forcePlanet replaces a node's planet regardless of the update rule.
func forcePlanet(t testing.TB, n *Node, w *world.World) {
	n.topo.mu.Lock()
	n.topo.planet = nil
	n.topo.mu.Unlock()
	if _, err := n.topo.offerPlanet(w); err != nil {
		t.Fatal(err)
	}
}

// node creates (but does not start) a node on 127.0.0.1 with the lab's planet.
func (l *lab) node(home string, tweak func(*Config)) *Node {
	l.t.Helper()
	cfg := Config{Home: home, Port: PortAny, Bind: []netip.Addr{l.bind},
		AllowLoopback: true, Logger: testLogger(l.t), Planet: l.planet}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := NewNode(context.Background(), cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	n.t = fastTiming
	l.t.Cleanup(func() { n.Close() })
	return n
}

// leaf starts a node with identity i.
func (l *lab) leaf(i int) *Node {
	n := l.node(homeWith(l.t, l.ids[i]), nil)
	n.Start()
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d * raceSlowdown)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitStatus(t testing.TB, nw *Network, want Status) NetworkState {
	t.Helper()
	var st NetworkState
	waitFor(t, "network status "+want.String(), 10*time.Second, func() bool {
		st = nw.State()
		return st.Status == want
	})
	return st
}

// testController is a minimal ConfigMaster for the lab: one private network, members
// authorized by address, IPv4 10.147.17.<n>/24 assigned by a table.
type testController struct {
	node *Node
	nwid ztaddr.NetworkID

	mu         sync.Mutex
	authorized map[ztaddr.Address]netip.Addr
	requests   map[ztaddr.Address]int
	public     bool
	revision   uint64
	mtu        int
	rules      []netconf.Rule
	members    map[ztaddr.Address]*identity.Identity
	// minInterval, like real controllers' 1 s, makes it ignore a member's requests that come
	// sooner than this after the last one (ms).
	minInterval int64
	last        map[ztaddr.Address]int64
}

func newTestController(n *Node, number uint32) *testController {
	c := &testController{node: n, nwid: ztaddr.NewNetworkID(n.Address(), number),
		authorized: map[ztaddr.Address]netip.Addr{}, requests: map[ztaddr.Address]int{},
		members: map[ztaddr.Address]*identity.Identity{}, revision: 1, mtu: netconf.DefaultMTU,
		last:  map[ztaddr.Address]int64{},
		rules: []netconf.Rule{netconf.Action(netconf.ActionAccept)}}
	n.SetConfigMaster(c)
	return c
}

func (c *testController) deauthorize(a ztaddr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.authorized, a)
}

func (c *testController) authorize(a ztaddr.Address, ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.authorized[a] = netip.MustParseAddr(ip)
}

func (c *testController) requestCount(a ztaddr.Address) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[a]
}

func (c *testController) config(member *identity.Identity, ip netip.Addr) *netconf.NetworkConfig {
	now := time.Now().UnixMilli()
	nc := &netconf.NetworkConfig{Version: netconf.Version, NetworkID: c.nwid, Timestamp: now,
		CredentialTimeMaxDelta: netconf.DefaultCredentialTimeMaxDelta, Revision: c.revision, IssuedTo: member.Address(),
		Flags: netconf.FlagEnableBroadcast, MulticastLimit: 32, Name: "lab", MTU: c.mtu, Rules: c.rules,
		Routes:    []netconf.Route{netconf.NewRoute(netip.MustParsePrefix("10.147.17.0/24"), netip.Addr{})},
		StaticIPs: []ztaddr.InetAddress{ztaddr.InetAddressOfPrefix(netip.PrefixFrom(ip, 24))}}
	if c.public {
		nc.Type = netconf.TypePublic
	}
	nc.COM = netconf.NewCOM(now, uint64(nc.CredentialTimeMaxDelta), c.nwid, member)
	if err := nc.COM.Sign(c.node.Identity()); err != nil {
		panic(err)
	}
	return nc
}

func (c *testController) Request(nwid ztaddr.NetworkID, requestID uint64, from *identity.Identity, _ *netconf.Dictionary) {
	c.mu.Lock()
	now := time.Now().UnixMilli()
	if now-c.last[from.Address()] < c.minInterval {
		c.mu.Unlock()
		return
	}
	c.last[from.Address()] = now
	c.requests[from.Address()]++
	c.members[from.Address()] = from
	ip, ok := c.authorized[from.Address()]
	var nc *netconf.NetworkConfig
	if ok && nwid == c.nwid {
		nc = c.config(from, ip)
	}
	c.mu.Unlock()
	switch {
	case nwid != c.nwid:
		c.node.SendError(from.Address(), nwid, requestID, wire.ErrorObjectNotFound)
	case nc == nil:
		c.node.SendError(from.Address(), nwid, requestID, wire.ErrorNetworkAccessDenied)
	default:
		c.node.SendConfig(from.Address(), requestID, nc)
	}
}

// push sends a member a fresh config unasked.
func (c *testController) push(a ztaddr.Address) {
	c.mu.Lock()
	nc := c.config(c.members[a], c.authorized[a])
	c.mu.Unlock()
	c.node.SendConfig(a, 0, nc)
}

// frameSink collects frames delivered by a network.
type frameSink struct {
	mu     sync.Mutex
	frames []sunkFrame
}

type sunkFrame struct {
	dst, src  [6]byte
	etherType uint16
	payload   []byte
}

func attachSink(nw *Network) *frameSink {
	s := &frameSink{}
	nw.SetReceiver(func(dst, src [6]byte, et uint16, p []byte) {
		s.mu.Lock()
		s.frames = append(s.frames, sunkFrame{dst, src, et, append([]byte(nil), p...)})
		s.mu.Unlock()
	})
	return s
}

func (s *frameSink) find(pred func(sunkFrame) bool) (sunkFrame, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.frames {
		if pred(f) {
			return f, true
		}
	}
	return sunkFrame{}, false
}

func (s *frameSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames)
}
