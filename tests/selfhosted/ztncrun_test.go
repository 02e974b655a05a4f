package selfhosted

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// ztncRun is the ztnc-run binary under test, built by TestMain.
var ztncRun string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if !testing.Short() {
		bin, remove, err := lab.BuildZtncRunTemp("ztnc-selfhosted-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer remove()
		ztncRun = bin
	}
	return m.Run()
}

// TestZtncRunOnOurController: the whole self-hosted path. A server under `ztnc-run --nwid`
// and a zerotier-one member, on a network of our controller reached through our root; the
// zerotier-one member fetches a file from the server over the virtual network.
func TestZtncRunOnOurController(t *testing.T) {
	s := startSelfHosted(t)
	lab.Require(t, "busybox", "curl")
	ctx := t.Context()
	nw, err := s.ctrl.CreateNetwork(ctx, lab.NewNetwork("ztncrun", ztSubnet))
	if err != nil {
		t.Fatal(err)
	}

	// ztnc-run has no process until a program runs, so its address is assigned in advance.
	zHome := lab.NewHome(t)
	zHome.SetIdentity(t, lab.Identity(4))
	zHome.SetPlanet(t, s.planet)
	zAddr := netip.MustParseAddr("203.0.113.50")
	if err := s.ctrl.Authorize(ctx, nw.ID, zHome.Address(), zAddr); err != nil {
		t.Fatal(err)
	}
	z := &lab.WrappedMember{
		Host: s.lab.AddHost("z", "192.0.2.5"),
		Home: zHome,
		Addr: zAddr,
		Wrap: func(nwid string, argv []string) []string {
			return append([]string{ztncRun, "--home", zHome.Dir, "--nwid", nwid, "--"}, argv...)
		},
		Ready: []string{"true"},
	}
	zep := z.WaitNetwork(t, nw.ID, joinTimeout)
	dir := t.TempDir()
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte(token), 0o644); err != nil {
		t.Fatal(err)
	}
	zep.Start(t, "busybox", "httpd", "-f", "-p", lab.HostPort(zAddr, 8080), "-h", dir)

	home1 := s.memberHome(t, 2, nw.ID)
	if err := s.ctrl.Authorize(ctx, nw.ID, home1.Address()); err != nil {
		t.Fatal(err)
	}
	m1 := lab.StartZT1(t, s.lab.AddHost("m1", member1Addr), lab.ZT1Config{Home: home1})
	ep1 := m1.WaitNetwork(t, nw.ID, joinTimeout)
	if err := ep1.WaitTCP(t, zAddr, 8080, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/token.txt", lab.HostPort(zAddr, 8080))
	if got := ep1.Run(t, "curl", "-sS", "--max-time", "20", url); got != token {
		t.Errorf("curl %s = %q, want %q", url, got, token)
	}
}
