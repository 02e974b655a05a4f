// Package ztinterop tests our ZeroTier node (package zt) against zerotier-one 1.14 in network
// namespace labs. It runs when ZT1_BIN names a zerotier-one binary and skips otherwise.
package ztinterop

import (
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Lab layout: zerotier-one checks at most one new identity per source /24 every 2 s, so the
// nodes sit in different /24s; the virtual network uses the third documentation /24.
var (
	memberAddr = "198.51.100.2"
	oursAddr   = "192.0.2.2"
	ztSubnet   = netip.MustParsePrefix("203.0.113.0/24")
)

const joinTimeout = 60 * time.Second

// startNode runs one of our nodes in lab host h.
func startNode(t *testing.T, h *lab.Host, cfg zt.Config) *zt.Node {
	t.Helper()
	return startNodeWith(t, h, cfg, func(*zt.Node) {})
}

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("ZT_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

func waitOK(t *testing.T, nw *zt.Network, timeout time.Duration) zt.NetworkState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := nw.State()
		if st.Status == zt.StatusOK {
			for _, p := range st.Addresses {
				if p.Addr().Is4() {
					return st
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("network %s: %v after %v", st.ID, st.Status, timeout)
		}
		select {
		case <-nw.Notify():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func mustAddress(t *testing.T, s string) ztaddr.Address {
	t.Helper()
	a, err := ztaddr.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func ipv4Of(st zt.NetworkState) netip.Addr {
	for _, p := range st.Addresses {
		if p.Addr().Is4() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// exchange proves Ethernet works both ways between our node (as host h) and a zerotier-one
// member's kernel at memberIP on endpoint ep: we ARP and ping it, it pings us.
func exchange(t *testing.T, h *host, memberIP netip.Addr, ep *lab.Endpoint) {
	t.Helper()
	mac := h.resolve(t, memberIP, 30*time.Second)
	h.ping(t, memberIP, mac, 30*time.Second)
	out := ep.Run(t, "ping", "-c", "3", "-i", "0.3", "-W", "5", h.ip.String())
	if !strings.Contains(out, " 0% packet loss") {
		t.Fatalf("ping from the zerotier-one member:\n%s", out)
	}
	if h.answered() < 3 {
		t.Fatalf("answered %d echo requests, want 3", h.answered())
	}
	// Frames bigger than a datagram: fragmented both ways (MTU 2800).
	out = ep.Run(t, "ping", "-c", "2", "-i", "0.3", "-W", "5", "-s", "2600", h.ip.String())
	if !strings.Contains(out, " 0% packet loss") {
		t.Fatalf("ping -s 2600 from the zerotier-one member:\n%s", out)
	}
}

// (a) A zerotier-one root + controller and a zerotier-one TAP member; our node joins the
// network, gets its address and exchanges ARP and ICMP with the member's kernel.
func TestJoinZeroTierOneNetwork(t *testing.T) {
	lab.ZT1Bin(t)
	lab.Require(t, "ping")
	ctx := t.Context()
	l := lab.New(t, lab.Config{})
	root := lab.StartZT1(t, l.AddHost("root", lab.LabRootAddr), lab.ZT1Config{
		Home: lab.NewLabHome(t, lab.Identity(1)), Port: lab.LabRootPort})
	ctrl := root.Controller()
	if err := ctrl.Ready(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := lab.NewNetwork("interop", ztSubnet)
	want.V6AssignMode.RFC4193 = true
	spec, err := ctrl.CreateNetwork(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	nwid := spec.ID

	mHome := lab.NewLabHome(t, lab.Identity(3))
	mHome.PreJoin(t, nwid)
	if err := ctrl.Authorize(ctx, nwid, mHome.Address()); err != nil {
		t.Fatal(err)
	}
	member := lab.StartZT1(t, l.AddHost("member", memberAddr), lab.ZT1Config{Home: mHome})
	ep := member.WaitNetwork(t, nwid, joinTimeout)

	oHome := lab.NewLabHome(t, lab.Identity(2))
	if err := ctrl.Authorize(ctx, nwid, oHome.Address()); err != nil {
		t.Fatal(err)
	}
	ours := startNode(t, l.AddHost("ours", oursAddr), zt.Config{Home: oHome.Dir})
	id, _ := ztaddr.ParseNetworkID(nwid)
	nw, err := ours.Join(id)
	if err != nil {
		t.Fatal(err)
	}
	st := waitOK(t, nw, joinTimeout)
	ip := ipv4Of(st)
	if !ztSubnet.Contains(ip) || st.MTU != 2800 || st.Name != "interop" || !st.Private {
		t.Fatalf("config: %+v", st)
	}
	t.Logf("our node %s on %s: %v", ours.Address(), nwid, st.Addresses)
	ip6 := ztaddr.RFC4193(id, ours.Address())
	if !slices.Contains(st.Addresses, ip6) {
		t.Fatalf("no RFC4193 address %s in %v", ip6, st.Addresses)
	}
	h := newHost(nw, ip)
	h.ip6 = ip6.Addr()
	exchange(t, h, ep.Addr, ep)

	// IPv6: NDP to the member's solicited-node group (a multicast), then ICMPv6 both ways.
	memberAddr6 := ztaddr.RFC4193(id, mustAddress(t, member.Address())).Addr()
	mac := h.resolve6(t, memberAddr6, 30*time.Second)
	h.ping6(t, memberAddr6, mac, 30*time.Second)
	if out := ep.Run(t, "ping", "-6", "-c", "3", "-i", "0.3", "-W", "5", h.ip6.String()); !strings.Contains(out, " 0% packet loss") {
		t.Fatalf("ping -6 from the zerotier-one member:\n%s", out)
	}

	if d := nw.Counters().Drops["not-member"]; d != 0 {
		t.Errorf("%d frames from an authorized member refused", d)
	}

	// Deauthorized, the member is revoked: the controller pushes a revocation of its
	// certificate to us, and its frames are refused from then on.
	if err := ctrl.Deauthorize(ctx, nwid, member.Address()); err != nil {
		t.Fatal(err)
	}
	before := nw.Counters().Drops["not-member"]
	answered := h.answered()
	deadline := time.Now().Add(30 * time.Second)
	for nw.Counters().Drops["not-member"] == before {
		if time.Now().After(deadline) {
			t.Fatal("the deauthorized member's frames are still accepted")
		}
		ep.Exec(t, "ping", "-c", "1", "-W", "1", ip.String())
	}
	if out, err := ep.Exec(t, "ping", "-c", "2", "-W", "2", ip.String()); err == nil {
		t.Fatalf("the deauthorized member still reaches us:\n%s", out)
	}
	t.Logf("revoked: %d echo requests answered before, %d after", answered, h.answered())
}

// (b) Our root, a zerotier-one node (controller of a network it is also a member of, over
// its TAP device) and our node: both come online through our root, our node is configured by
// zerotier-one's controller, the two exchange frames, and end up on a direct path.
func TestOurRootWithZeroTierOne(t *testing.T) {
	lab.ZT1Bin(t)
	lab.Require(t, "ping")
	ctx := t.Context()
	l := lab.New(t, lab.Config{})

	rootHome := lab.NewHome(t)
	rootHome.SetIdentity(t, lab.Identity(1))
	rootEP := netip.AddrPortFrom(netip.MustParseAddr(lab.LabRootAddr), lab.LabRootPort)
	root := startNode(t, l.AddHost("root", lab.LabRootAddr), zt.Config{Home: rootHome.Dir, Port: lab.LabRootPort,
		RootEndpoints: []netip.AddrPort{rootEP}})
	if !root.IsRoot() {
		t.Fatal("our root is not in root mode")
	}
	planet := root.Planet()

	mHome := lab.NewHome(t)
	mHome.SetIdentity(t, lab.Identity(3))
	mHome.SetPlanet(t, planet)
	member := lab.StartZT1(t, l.AddHost("member", memberAddr), lab.ZT1Config{Home: mHome})
	if err := member.WaitOnline(joinTimeout); err != nil {
		t.Fatalf("zerotier-one not online through our root: %v", err)
	}
	ctrl := member.Controller()
	if err := ctrl.Ready(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	spec, err := ctrl.CreateNetwork(ctx, lab.NewNetwork("ours", ztSubnet))
	if err != nil {
		t.Fatal(err)
	}
	nwid := spec.ID
	if err := ctrl.Authorize(ctx, nwid, member.Address()); err != nil {
		t.Fatal(err)
	}
	if err := member.Join(ctx, nwid); err != nil {
		t.Fatal(err)
	}
	ep := member.WaitNetwork(t, nwid, joinTimeout)

	oHome := lab.NewHome(t)
	oHome.SetIdentity(t, lab.Identity(2))
	if err := ctrl.Authorize(ctx, nwid, oHome.Address()); err != nil {
		t.Fatal(err)
	}
	ours := startNode(t, l.AddHost("ours", oursAddr), zt.Config{Home: oHome.Dir, Planet: planet})
	id, _ := ztaddr.ParseNetworkID(nwid)
	nw, err := ours.Join(id)
	if err != nil {
		t.Fatal(err)
	}
	st := waitOK(t, nw, joinTimeout)
	if !ours.Online() {
		t.Error("our node does not count itself online")
	}
	if root.Counters().Relayed == 0 {
		t.Error("our root relayed nothing between the two (the first contact goes through it)")
	}
	exchange(t, newHost(nw, ipv4Of(st)), ep.Addr, ep)

	// Direct: each lists the other with an active path at its lab address.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ourView := false
		for _, p := range ours.Peers() {
			for _, x := range p.Paths {
				if p.Address.String() == member.Address() && x.Active && x.Address.Addr().String() == memberAddr {
					ourView = true
				}
			}
		}
		theirView := false
		peers, err := member.Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range peers {
			for _, x := range p.Paths {
				if p.Address == ours.Address().String() && x.Active && strings.HasPrefix(x.Address, oursAddr+"/") {
					theirView = true
				}
			}
		}
		if ourView && theirView {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no direct path (ours sees it: %v, zerotier-one sees it: %v); our peers: %+v; theirs: %+v",
				ourView, theirView, ours.Peers(), peers)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
