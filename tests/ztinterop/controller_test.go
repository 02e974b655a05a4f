package ztinterop

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// fixedController is the least of a network controller, enough to test that our node answers
// configuration requests in a form zerotier-one accepts (zt/controller is the real one): a
// private network, members authorized with fixed addresses.
type fixedController struct {
	node *zt.Node
	nwid ztaddr.NetworkID

	mu  sync.Mutex
	ips map[ztaddr.Address]netip.Addr
}

func (c *fixedController) Request(nwid ztaddr.NetworkID, requestID uint64, from *identity.Identity, _ *netconf.Dictionary) {
	c.mu.Lock()
	ip, ok := c.ips[from.Address()]
	c.mu.Unlock()
	if nwid != c.nwid {
		c.node.SendError(from.Address(), nwid, requestID, wire.ErrorObjectNotFound)
		return
	}
	if !ok {
		c.node.SendError(from.Address(), nwid, requestID, wire.ErrorNetworkAccessDenied)
		return
	}
	now := time.Now().UnixMilli()
	nc := &netconf.NetworkConfig{Version: netconf.Version, NetworkID: nwid, Timestamp: now,
		CredentialTimeMaxDelta: netconf.DefaultCredentialTimeMaxDelta, Revision: 1, IssuedTo: from.Address(),
		Flags: netconf.FlagEnableBroadcast, MulticastLimit: 32, Name: "ours", MTU: netconf.DefaultMTU,
		Rules:     []netconf.Rule{netconf.Action(netconf.ActionAccept)},
		Routes:    []netconf.Route{netconf.NewRoute(ztSubnet, netip.Addr{})},
		StaticIPs: []ztaddr.InetAddress{ztaddr.InetAddressOfPrefix(netip.PrefixFrom(ip, ztSubnet.Bits()))}}
	nc.COM = netconf.NewCOM(now, uint64(nc.CredentialTimeMaxDelta), nwid, from)
	if err := nc.COM.Sign(c.node.Identity()); err != nil {
		panic(err)
	}
	c.node.SendConfig(from.Address(), requestID, nc)
}

// (c) A zerotier-one member joins a network whose controller is our node (which is a member
// of it too, configured locally), through a zerotier-one root; the two exchange frames.
func TestZeroTierOneJoinsOurController(t *testing.T) {
	lab.ZT1Bin(t)
	lab.Require(t, "ping")
	ctx := t.Context()
	l := lab.New(t, lab.Config{})
	lab.StartZT1(t, l.AddHost("root", lab.LabRootAddr), lab.ZT1Config{
		Home: lab.NewLabHome(t, lab.Identity(1)), Port: lab.LabRootPort})

	oHome := lab.NewLabHome(t, lab.Identity(2))
	var ours *zt.Node
	ctlHost := l.AddHost("ours", oursAddr)
	ctl := &fixedController{ips: map[ztaddr.Address]netip.Addr{}}
	ours = startNodeWith(t, ctlHost, zt.Config{Home: oHome.Dir}, func(n *zt.Node) {
		ctl.node = n
		ctl.nwid = ztaddr.NewNetworkID(n.Address(), 0x4242)
		n.SetConfigMaster(ctl)
	})
	mHome := lab.NewLabHome(t, lab.Identity(3))
	memberID, _ := ztaddr.ParseAddress(mHome.Address())
	ctl.mu.Lock()
	ctl.ips[ours.Address()] = netip.MustParseAddr("203.0.113.10")
	ctl.ips[memberID] = netip.MustParseAddr("203.0.113.20")
	ctl.mu.Unlock()

	nw, err := ours.Join(ctl.nwid)
	if err != nil {
		t.Fatal(err)
	}
	st := waitOK(t, nw, 10*time.Second) // configured by its own controller, locally
	h := newHost(nw, ipv4Of(st))

	mHome.PreJoin(t, ctl.nwid.String())
	member := lab.StartZT1(t, l.AddHost("member", memberAddr), lab.ZT1Config{Home: mHome})
	ep := member.WaitNetwork(t, ctl.nwid.String(), joinTimeout)
	n, err := member.Network(ctx, ctl.nwid.String())
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "ours" || n.Type != "PRIVATE" || n.MTU != 2800 || ep.Addr != netip.MustParseAddr("203.0.113.20") {
		t.Fatalf("zerotier-one's view of our network: %+v", n)
	}
	exchange(t, h, ep.Addr, ep)
}

// startNodeWith is startNode with a hook run before Start (to attach a ConfigMaster).
func startNodeWith(t *testing.T, h *lab.Host, cfg zt.Config, before func(*zt.Node)) *zt.Node {
	t.Helper()
	cfg.Logger = testLogger(t)
	var n *zt.Node
	err := h.Do(func() (err error) {
		n, err = zt.NewNode(t.Context(), cfg)
		return err
	})
	if err != nil {
		t.Fatalf("node in %s: %v", h.Name, err)
	}
	t.Cleanup(func() { n.Close() })
	before(n)
	n.Start()
	return n
}
