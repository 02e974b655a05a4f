package interop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// Lab layout. The root must be at lab.LabRootAddr; members sit in other /24s than each other
// because zerotier-one verifies at most one new identity per source /24 every 2 s (a second
// member would be ignored until its next HELLO, 5 s later). The virtual network uses the
// remaining documentation /24, so its routes never clash with the lab's.
var (
	member1Addr = "192.0.2.2"
	member2Addr = "198.51.100.2"
	ztSubnet    = netip.MustParsePrefix("203.0.113.0/24")
	ztSubnet6   = netip.MustParsePrefix("2001:db8:7a::/64")
)

// joinTimeout bounds the time from a member's start to its network being usable.
const joinTimeout = 60 * time.Second

// memberKind starts a member in host h with a prepared home (planet, identity, networks.d)
// whose address n's controller has authorized.
type memberKind struct {
	name  string
	start func(t *testing.T, n *network, h *lab.Host, home *lab.Home) lab.Member
}

// memberKinds are the kinds of node tried as member 1: a zerotier-one member with its TAP
// device, and ztnc-run, whose node lives inside each program it wraps.
var memberKinds = []memberKind{
	{"zerotier-one", func(t *testing.T, _ *network, h *lab.Host, home *lab.Home) lab.Member {
		return lab.StartZT1(t, h, lab.ZT1Config{Home: home})
	}},
	{"ztnc-run", func(t *testing.T, n *network, h *lab.Host, home *lab.Home) lab.Member {
		return lab.StartZtncMember(t, ztncRun, h, home, n.nwid, joinTimeout)
	}},
}

// network is a running zerotier-one root + controller with one network.
type network struct {
	lab  *lab.Lab
	root *lab.ZT1
	ctrl *lab.Controller
	nwid string
}

// startNetwork builds the lab and runs a zerotier-one root and controller in it with a private
// network that assigns IPv4 from ztSubnet and IPv6 from ztSubnet6.
func startNetwork(t *testing.T) *network {
	t.Helper()
	lab.ZT1Bin(t)
	lab.Require(t, "ping", "curl", "busybox")
	l := lab.New(t, lab.Config{})
	rootHost := l.AddHost("root", lab.LabRootAddr)
	root := lab.StartZT1(t, rootHost, lab.ZT1Config{
		Home: lab.NewLabHome(t, lab.Identity(1)),
		Port: lab.LabRootPort,
	})
	ctrl := root.Controller()
	if err := ctrl.Ready(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	spec := lab.NewNetwork("interop", ztSubnet)
	spec.V6AssignMode.ZT = true
	spec.Routes = append(spec.Routes, lab.Route{Target: ztSubnet6.String()})
	spec.IPAssignmentPools = append(spec.IPAssignmentPools,
		lab.IPPool{Start: "2001:db8:7a::1", End: "2001:db8:7a::ffff"})
	nw, err := ctrl.CreateNetwork(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(nw.ID, root.Address()) || !nw.Private {
		t.Fatalf("created network %+v, want a private network under %s", nw, root.Address())
	}
	t.Logf("network %s on controller %s", nw.ID, root.Address())
	return &network{lab: l, root: root, ctrl: ctrl, nwid: nw.ID}
}

// TestTwoMembers is the lab's proof: two members get addresses from the pool, reach each other
// over the network (ICMP, IPv6, HTTP) on a direct path, and a member is refused until the
// controller authorizes it. Member 1 runs as each memberKind; member 2 is always zerotier-one.
func TestTwoMembers(t *testing.T) {
	t.Parallel()
	lab.ZT1Bin(t)
	for _, kind := range memberKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			testTwoMembers(t, kind)
		})
	}
}

func testTwoMembers(t *testing.T, kind memberKind) {
	n := startNetwork(t)
	ctx := t.Context()

	// Member 1 has a known identity and is authorized before it ever asks (what a user of
	// ztnc-run does: authorize the address, then start).
	home1 := lab.NewLabHome(t, lab.Identity(2))
	home1.PreJoin(t, n.nwid)
	if err := n.ctrl.Authorize(ctx, n.nwid, home1.Address()); err != nil {
		t.Fatal(err)
	}
	m1 := kind.start(t, n, n.lab.AddHost("m1", member1Addr), home1)
	// zerotier-one applies the network's 2001:db8:: addresses only when allowed global ones.
	settings := lab.ZT1Settings{AllowManaged: true, AllowGlobal: true}
	if zt1, ok := m1.(*lab.ZT1); ok {
		if err := zt1.Configure(ctx, n.nwid, settings); err != nil {
			t.Fatal(err)
		}
	}

	// Member 2 generates its identity, joins through the API, and is refused until authorized.
	h2 := n.lab.AddHost("m2", member2Addr)
	m2 := lab.StartZT1(t, h2, lab.ZT1Config{})
	if err := m2.Configure(ctx, n.nwid, settings); err != nil {
		t.Fatal(err)
	}
	if err := waitStatus(m2, n.nwid, "ACCESS_DENIED", joinTimeout); err != nil {
		t.Fatal(err)
	}
	if err := n.ctrl.Authorize(ctx, n.nwid, m2.Address()); err != nil {
		t.Fatal(err)
	}

	ep1 := m1.WaitNetwork(t, n.nwid, joinTimeout)
	ep2 := m2.WaitNetwork(t, n.nwid, joinTimeout)
	t.Logf("member 1 %s at %s, member 2 %s at %s", m1.Address(), ep1.Addr, m2.Address(), ep2.Addr)
	for _, a := range []netip.Addr{ep1.Addr, ep2.Addr} {
		if !ztSubnet.Contains(a) || a == ztSubnet.Addr() {
			t.Errorf("assigned %s, want an address from the pool %s", a, ztSubnet)
		}
	}
	if ep1.Addr == ep2.Addr {
		t.Fatalf("both members got %s", ep1.Addr)
	}
	members, err := n.ctrl.Members(ctx, n.nwid)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []lab.Member{m1, m2} {
		rec, err := n.ctrl.Member(ctx, n.nwid, m.Address())
		if _, listed := members[m.Address()]; !listed || err != nil || !rec.Authorized || rec.Identity == "" {
			t.Errorf("controller's record of %s: %+v (listed %v, %v)", m.Address(), rec, listed, err)
		}
	}

	for _, m := range []lab.Member{m1, m2} {
		rec, err := n.ctrl.Member(ctx, n.nwid, m.Address())
		ep := map[lab.Member]*lab.Endpoint{m1: ep1, m2: ep2}[m]
		if err != nil || !slices.Contains(rec.IPAssignments, ep.Addr.String()) {
			t.Errorf("%s is at %s; the controller's record: %+v (%v)", m.Address(), ep.Addr, rec, err)
		}
	}

	// An HTTP server on member 1 (first, because it is also what keeps a wrapped member's
	// node running for the rest of the test).
	dir := t.TempDir()
	token := randomToken(t)
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte(token), 0o644); err != nil {
		t.Fatal(err)
	}
	ep1.Start(t, "busybox", "httpd", "-f", "-p", "8080", "-h", dir)
	if err := ep2.WaitTCP(t, ep1.Addr, 8080, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	// ICMP from the zerotier-one member, over its TAP device (the first echo may wait for
	// address resolution through the network's multicast).
	ep2.Run(t, "ping", "-c", "3", "-i", "0.2", "-w", "20", ep1.Addr.String())

	// HTTP from member 2 to the server on member 1.
	url := fmt.Sprintf("http://%s/token.txt", lab.HostPort(ep1.Addr, 8080))
	if got := ep2.Run(t, "curl", "-sS", "--max-time", "20", url); got != token {
		t.Errorf("curl %s = %q, want %q", url, got, token)
	}

	// The members talk directly, not through the root.
	if err := waitDirectPath(m2, m1.Address(), member1Addr, 20*time.Second); err != nil {
		t.Error(err)
	}

	// IPv6 from the pool, over the same network (NDP through ZeroTier multicast).
	switch m := m1.(type) {
	case *lab.ZT1:
		a1, a2 := ipv6Of(t, m, n.nwid), ipv6Of(t, m2, n.nwid)
		ep2.Run(t, "ping", "-6", "-c", "3", "-i", "0.2", "-w", "20", a1.String())
		ep1.Run(t, "ping", "-6", "-c", "3", "-i", "0.2", "-w", "20", a2.String())
	case *lab.ZtncMember:
		if !ztSubnet6.Contains(m.Addr6) {
			t.Fatalf("ztnc-run member has no IPv6 address from %s", ztSubnet6)
		}
		// From the zerotier-one member only: the wrapped httpd holds the member's node (one
		// ztnc-run per home at a time).
		ipv6Of(t, m2, n.nwid)
		ep2.Run(t, "ping", "-6", "-c", "3", "-i", "0.2", "-w", "20", m.Addr6.String())
		url6 := fmt.Sprintf("http://%s/token.txt", lab.HostPort(m.Addr6, 8080))
		if got := ep2.Run(t, "curl", "-sS", "--max-time", "20", "-g", url6); got != token {
			t.Errorf("curl %s = %q, want %q", url6, got, token)
		}
	}
}

// TestDeauthorize checks that a deauthorized member loses the network at its next config
// refresh (zerotier-one members re-request every 60 s).
func TestDeauthorize(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a config refresh (up to a minute)")
	}
	n := startNetwork(t)
	ctx := t.Context()
	home := lab.NewLabHome(t, lab.Identity(3))
	home.PreJoin(t, n.nwid)
	if err := n.ctrl.Authorize(ctx, n.nwid, home.Address()); err != nil {
		t.Fatal(err)
	}
	m := lab.StartZT1(t, n.lab.AddHost("m", member1Addr), lab.ZT1Config{Home: home})
	m.WaitNetwork(t, n.nwid, joinTimeout)
	if err := n.ctrl.Deauthorize(ctx, n.nwid, m.Address()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := waitStatus(m, n.nwid, "ACCESS_DENIED", 90*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("member denied %v after deauthorization", time.Since(start).Round(time.Millisecond))
}

// TestRootAndController checks the root's view: online members see it as their PLANET, and
// the controller refuses unknown networks.
func TestRootAndController(t *testing.T) {
	n := startNetwork(t)
	ctx := t.Context()
	st, err := n.root.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PlanetWorldID != 149604618 || !strings.HasPrefix(lab.Identity(1), st.Address) {
		t.Errorf("root status: world %d address %s", st.PlanetWorldID, st.Address)
	}
	m := lab.StartZT1(t, n.lab.AddHost("m", member1Addr), lab.ZT1Config{})
	if err := m.WaitOnline(joinTimeout); err != nil {
		t.Fatal(err)
	}
	peers, err := m.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(peers, func(p lab.ZT1Peer) bool { return p.Address == n.root.Address() })
	if i < 0 || peers[i].Role != "PLANET" {
		t.Errorf("member's peers %+v: want root %s as PLANET", peers, n.root.Address())
	}
	// A network ID under the controller that does not exist.
	missing := n.root.Address() + "ffffff"
	if err := m.Join(ctx, missing); err != nil {
		t.Fatal(err)
	}
	if err := waitStatus(m, missing, "NOT_FOUND", joinTimeout); err != nil {
		t.Error(err)
	}
	if err := m.Leave(ctx, missing); err != nil {
		t.Error(err)
	}
	if ids, err := n.ctrl.Networks(ctx); err != nil || !slices.Equal(ids, []string{n.nwid}) {
		t.Errorf("controller networks %v %v, want [%s]", ids, err, n.nwid)
	}
}

func waitStatus(z *lab.ZT1, nwid, status string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		nw, err := z.Network(context.Background(), nwid)
		if err == nil && nw.Status == status {
			return nil
		}
		last = fmt.Sprint(nw.Status, err)
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s on %s: status %s after %v, want %s", z.Address(), nwid, last, timeout, status)
}

// waitDirectPath waits until z has an active path to peer at the peer's lab address.
func waitDirectPath(z *lab.ZT1, peer, physAddr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last []lab.ZT1Peer
	for time.Now().Before(deadline) {
		peers, err := z.Peers(context.Background())
		if err == nil {
			last = peers
			for _, p := range peers {
				if p.Address != peer {
					continue
				}
				for _, path := range p.Paths {
					if path.Active && !path.Expired && strings.HasPrefix(path.Address, physAddr+"/") {
						return nil
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s has no direct path to %s at %s: peers %+v", z.Address(), peer, physAddr, last)
}

// ipv6Of waits until z has its address from ztSubnet6 on the network's TAP device.
func ipv6Of(t *testing.T, z *lab.ZT1, nwid string) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(joinTimeout)
	for {
		nw, err := z.Network(t.Context(), nwid)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range nw.AssignedAddresses {
			if p, err := netip.ParsePrefix(a); err == nil && ztSubnet6.Contains(p.Addr()) &&
				z.Host.WaitAddr(nw.PortDeviceName, p.Addr(), 0) == nil {
				return p.Addr()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no IPv6 address from %s on its TAP: %v", z.Address(), ztSubnet6, nw.AssignedAddresses)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func randomToken(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
