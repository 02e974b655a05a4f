// Package selfhosted tests a ZeroTier network hosted entirely by ztnc: our root and our
// controller, with zerotier-one 1.14 members (ZT1_BIN; skipped without it).
package selfhosted

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/controller"
)

// Lab layout: root and controller share 192.0.2.0/24 with member 2; member 1 is in
// 198.51.100.0/24; the virtual network is 203.0.113.0/24, which no host uses.
var (
	rootAddr    = lab.LabRootAddr
	ctlAddr     = "192.0.2.3"
	member1Addr = "198.51.100.2"
	member2Addr = "192.0.2.4"
	ztSubnet    = netip.MustParsePrefix("203.0.113.0/24")
)

const (
	rootPort    = lab.LabRootPort
	ctlPort     = 9993
	joinTimeout = 60 * time.Second
)

func logger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("ZT_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// startNode runs one of our nodes in host h, bound to the host's address.
func startNode(t *testing.T, h *lab.Host, identity string, cfg zt.Config) *zt.Node {
	t.Helper()
	home := lab.NewHome(t)
	home.SetIdentity(t, identity)
	cfg.Home, cfg.Bind, cfg.Logger = home.Dir, []netip.Addr{h.Addr}, logger(t)
	var n *zt.Node
	err := h.Do(func() (err error) {
		n, err = zt.NewNode(context.Background(), cfg)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	n.Start()
	return n
}

// selfHosted is our root and our controller (with its API) in a lab.
type selfHosted struct {
	lab    *lab.Lab
	planet []byte
	ctrl   *lab.Controller
}

func startSelfHosted(t *testing.T) *selfHosted {
	t.Helper()
	lab.ZT1Bin(t)
	return startOurs(t)
}

// startOurs starts our root and our controller in the lab (no zerotier-one needed).
func startOurs(t *testing.T) *selfHosted {
	t.Helper()
	lab.Require(t, "ping")
	l := lab.New(t, lab.Config{})
	rootHost, ctlHost := l.AddHost("root", rootAddr), l.AddHost("ctl", ctlAddr)

	root := startNode(t, rootHost, lab.Identity(5), zt.Config{Port: rootPort,
		RootEndpoints: []netip.AddrPort{netip.AddrPortFrom(rootHost.Addr, rootPort)}})
	planet := root.Planet()

	node := startNode(t, ctlHost, lab.Identity(6), zt.Config{Port: ctlPort, Planet: planet})
	ctlHome := t.TempDir()
	ctl, err := controller.New(controller.Config{Home: ctlHome, Identity: node.Identity(), Sender: node, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	node.SetConfigMaster(ctl)
	token, err := controller.AuthToken(ctlHome)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := ctlHost.Do(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:9993")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ctl.Handler(token)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c := &lab.Controller{Address: node.Address().String(), URL: "http://127.0.0.1:9993", Token: token,
		Client: ctlHost.HTTPClient()}
	if err := c.Ready(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("our root %s at %s:%d, our controller %s at %s:%d", root.Address(), rootAddr, rootPort,
		node.Address(), ctlAddr, ctlPort)
	return &selfHosted{lab: l, planet: planet, ctrl: c}
}

// get reads a JSON object from the controller's API.
func (s *selfHosted) get(path string, out any) error {
	req, err := http.NewRequest("GET", s.ctrl.URL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-ZT1-Auth", s.ctrl.Token)
	resp, err := s.ctrl.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// memberHome is a zerotier-one home with identity n, our planet and nwid joined.
func (s *selfHosted) memberHome(t *testing.T, n int, nwid string) *lab.Home {
	h := lab.NewHome(t)
	h.SetIdentity(t, lab.Identity(n))
	h.SetPlanet(t, s.planet)
	h.PreJoin(t, nwid)
	return h
}

// TestZT1MembersOnOurController: zerotier-one members join a network of our controller
// through our root. Each gets the address the API reports; they reach each other (so they
// accept each other's certificates of membership, signed by our controller); a member is
// refused until authorized; a deauthorized member is cut off by its peer at once (revocation).
func TestZT1MembersOnOurController(t *testing.T) {
	s := startSelfHosted(t)
	ctx := t.Context()
	nw, err := s.ctrl.CreateNetwork(ctx, lab.NewNetwork("selfhosted", ztSubnet))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(nw.ID, s.ctrl.Address) || !nw.Private {
		t.Fatalf("created %+v", nw)
	}

	// Member 1 is authorized before it starts; member 2 is refused until authorized.
	home1 := s.memberHome(t, 2, nw.ID)
	if err := s.ctrl.Authorize(ctx, nw.ID, home1.Address()); err != nil {
		t.Fatal(err)
	}
	m1 := lab.StartZT1(t, s.lab.AddHost("m1", member1Addr), lab.ZT1Config{Home: home1})
	home2 := s.memberHome(t, 3, nw.ID)
	m2 := lab.StartZT1(t, s.lab.AddHost("m2", member2Addr), lab.ZT1Config{Home: home2})
	if err := poll(joinTimeout, func() error {
		n, err := m2.Network(ctx, nw.ID)
		if err == nil && n.Status != "ACCESS_DENIED" {
			err = errors.New("status " + n.Status)
		}
		return err
	}); err != nil {
		t.Fatalf("member 2 before authorization: %v", err)
	}
	if err := s.ctrl.Authorize(ctx, nw.ID, m2.Address()); err != nil {
		t.Fatal(err)
	}

	ep1 := m1.WaitNetwork(t, nw.ID, joinTimeout)
	ep2 := m2.WaitNetwork(t, nw.ID, joinTimeout)
	for _, m := range []struct {
		zt1 *lab.ZT1
		ep  *lab.Endpoint
	}{{m1, ep1}, {m2, ep2}} {
		rec, err := s.ctrl.Member(ctx, nw.ID, m.zt1.Address())
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.IPAssignments) != 1 || rec.IPAssignments[0] != m.ep.Addr.String() || !rec.Authorized {
			t.Errorf("%s has %s, the API says %+v", m.zt1.Address(), m.ep.Addr, rec)
		}
		n, err := m.zt1.Network(ctx, nw.ID)
		if err != nil || n.Name != "selfhosted" || n.Type != "PRIVATE" {
			t.Errorf("%s sees %+v (%v)", m.zt1.Address(), n, err)
		}
		// The versions zerotier-one sent with its request are stored, as its controller does.
		var versions struct{ VMajor, VMinor, VRev, VProto int }
		if err := s.get("/controller/network/"+nw.ID+"/member/"+m.zt1.Address(), &versions); err != nil ||
			versions.VMajor != 1 || versions.VMinor != 14 || versions.VRev != 1 || versions.VProto != 12 {
			t.Errorf("%s: stored versions %+v (%v)", m.zt1.Address(), versions, err)
		}
	}
	t.Logf("member 1 %s at %s, member 2 %s at %s", m1.Address(), ep1.Addr, m2.Address(), ep2.Addr)
	ep2.Run(t, "ping", "-c", "3", "-i", "0.2", "-w", "20", ep1.Addr.String())
	ep1.Run(t, "ping", "-c", "3", "-i", "0.2", "-w", "20", ep2.Addr.String())

	// Deauthorized, member 2 is dropped by member 1 as soon as the revocation arrives.
	if err := s.ctrl.Deauthorize(ctx, nw.ID, m2.Address()); err != nil {
		t.Fatal(err)
	}
	if err := poll(10*time.Second, func() error {
		if _, err := ep2.Exec(t, "ping", "-c", "1", "-W", "1", ep1.Addr.String()); err == nil {
			return errors.New("member 1 still answers member 2")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if out, err := ep2.Exec(t, "ping", "-c", "3", "-i", "0.3", "-w", "3", ep1.Addr.String()); err == nil {
		t.Errorf("deauthorized member 2 still reaches member 1:\n%s", out)
	}
}

// poll retries try every 250 ms until it succeeds or timeout passes.
func poll(timeout time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}
