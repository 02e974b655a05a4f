package selfhosted

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// TestZtncRunRootAndController is the self-hosted set-up as users run it: `ztnc-run root` and
// `ztnc-run controller` processes, the network made through the controller's HTTP API, a
// zerotier-one member that joins and gets the address the API reports, and a ztnc-run member
// whose HTTP server the zerotier-one member reaches over its TAP device.
func TestZtncRunRootAndController(t *testing.T) {
	lab.ZT1Bin(t)
	lab.Require(t, "ping", "curl", "busybox")
	l := lab.New(t, lab.Config{})
	rootHost, ctlHost := l.AddHost("root", rootAddr), l.AddHost("ctl", ctlAddr)
	ctx := t.Context()

	planet := lab.StartZtncRoot(t, ztncRun, rootHost, lab.Identity(5))
	ctrl := lab.StartZtncController(t, ztncRun, ctlHost, lab.Identity(6), planet)
	nw, err := ctrl.CreateNetwork(ctx, lab.NewNetwork("selfhosted", ztSubnet))
	if err != nil {
		t.Fatal(err)
	}

	memberHome := func(n int) *lab.Home {
		h := lab.NewHome(t)
		h.SetIdentity(t, lab.Identity(n))
		h.SetPlanet(t, planet)
		h.PreJoin(t, nw.ID)
		if err := ctrl.Authorize(ctx, nw.ID, h.Address()); err != nil {
			t.Fatal(err)
		}
		return h
	}
	server := lab.StartZtncMember(t, ztncRun, l.AddHost("m1", member1Addr), memberHome(2), nw.ID, joinTimeout)
	z := lab.StartZT1(t, l.AddHost("m2", member2Addr), lab.ZT1Config{Home: memberHome(3)})
	epZ := z.WaitNetwork(t, nw.ID, joinTimeout)
	for _, m := range []struct {
		addr string
		ip   string
	}{{server.Address(), server.Addr.String()}, {z.Address(), epZ.Addr.String()}} {
		rec, err := ctrl.Member(ctx, nw.ID, m.addr)
		if err != nil || !rec.Authorized || !slices.Equal(rec.IPAssignments, []string{m.ip}) {
			t.Errorf("member %s is at %s; the API says %+v (%v)", m.addr, m.ip, rec, err)
		}
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("self-hosted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	epS := server.WaitNetwork(t, nw.ID, joinTimeout)
	epS.Start(t, "busybox", "httpd", "-f", "-p", "8080", "-h", dir)
	if err := epZ.WaitTCP(t, epS.Addr, 8080, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	url := "http://" + lab.HostPort(epS.Addr, 8080) + "/index.html"
	if got := epZ.Run(t, "curl", "-sS", "--max-time", "20", url); got != "self-hosted\n" {
		t.Errorf("curl %s = %q", url, got)
	}
	epZ.Run(t, "ping", "-c", "3", "-i", "0.2", "-w", "20", epS.Addr.String())
}
