// Package host tests how ztnc-run meets its host, with real programs: the container
// entrypoint mode (environment variables, identity injection, PID 1), the control socket and
// its commands (status, listnetworks, listpeers, join, leave), /healthz and /metrics, and
// published ports.
//
// Tests that need a ZeroTier network run one on loopback, hosted by our own binaries:
// `ztnc-run root`, `ztnc-run controller` (driven through its API) and members that are
// `ztnc-run --nwid` processes with homes of their own. Identities come from the lab's
// pre-generated set, so that no test waits for the identity proof of work.
package host

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// ztncRun is the ztnc-run binary under test; its directory is put first on PATH so that
// programs run by the tests can call it.
var ztncRun string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin, remove, err := lab.BuildZtncRunTemp("ztnc-host-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer remove()
	ztncRun = bin
	os.Setenv("PATH", filepath.Dir(ztncRun)+string(os.PathListSeparator)+os.Getenv("PATH"))
	// The tests choose every setting themselves.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ZTNC_") || k == "ZT_NC_NWID" {
			os.Unsetenv(k)
		}
	}
	return m.Run()
}

// need skips the test in -short mode or without the programs it runs.
func need(t *testing.T, progs ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (-short)")
	}
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed (scripts/deps.sh installs it)", p)
		}
	}
}

// proc is a process running in the background; result is a command that has run to its end.
type (
	proc   = lab.Child
	result = lab.Result
)

// ztnc starts ztnc-run with args.
func ztnc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	return lab.StartChild(t, name, lab.Spec{Argv: append([]string{ztncRun}, args...), Env: env})
}

// waitFor polls cond every 50 ms until it returns nil; it fails the test with cond's last
// error when timeout passes, or when p (if not nil) exits first.
func waitFor(t *testing.T, p *proc, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if p != nil {
			select {
			case <-p.Done():
				if err = cond(); err == nil {
					return
				}
				t.Fatalf("%s exited (%d) before %s: %v\nstdout:\n%s\nstderr:\n%s", p.Name, p.Code, what, err, &p.Stdout, &p.Stderr)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runZtnc runs ztnc-run with args to its end.
func runZtnc(t *testing.T, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	return lab.RunCmd(t, timeout, lab.Spec{Argv: append([]string{ztncRun}, args...), Env: env})
}

// homeWith returns a new home holding a lab identity (no proof of work at start).
func homeWith(t *testing.T, n int) *lab.Home {
	t.Helper()
	h := lab.NewHome(t)
	h.SetIdentity(t, lab.Identity(n))
	return h
}

// Identities of the lab's set the tests use: root and controller; members take the others.
const (
	rootIdentity       = 7
	controllerIdentity = 8
)

// netSubnet is the IPv4 pool and route of the test networks: a documentation range, since a
// program whose network is down (not yet joined, or left) sends its traffic to the host's
// network.
var netSubnet = netip.MustParsePrefix("203.0.113.0/24")

// selfHosted is our root and our controller, each a ztnc-run process on loopback.
type selfHosted struct {
	planet            string // the root's planet file
	rootHome, ctlHome *lab.Home
	ctl               *lab.Controller
}

func startSelfHosted(t *testing.T) *selfHosted {
	t.Helper()
	rootHome, ctlHome := homeWith(t, rootIdentity), homeWith(t, controllerIdentity)
	rootPort := lab.FreePort(t)
	root := ztnc(t, "root", nil, "root", "--home", rootHome.Dir, "--bind", "127.0.0.1", "--port", strconv.Itoa(rootPort))
	waitFor(t, root, "root serving", 30*time.Second, func() error {
		if !strings.Contains(root.Stderr.String(), "root serving") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	s := &selfHosted{planet: rootHome.Path("planet"), rootHome: rootHome, ctlHome: ctlHome}
	ctlPort := lab.FreePort(t)
	ctl := ztnc(t, "controller", nil, "controller", "--home", ctlHome.Dir, "--bind", "127.0.0.1",
		"--port", strconv.Itoa(ctlPort), "--planet", s.planet)
	waitFor(t, ctl, "controller API", 30*time.Second, func() error {
		if !strings.Contains(ctl.Stdout.String()+ctl.Stderr.String(), "API http://") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	token, err := os.ReadFile(ctlHome.Path("authtoken.secret"))
	if err != nil {
		t.Fatal(err)
	}
	s.ctl = &lab.Controller{Address: ctlHome.Address(), URL: "http://127.0.0.1:" + strconv.Itoa(ctlPort),
		Token: strings.TrimSpace(string(token)), Client: &http.Client{Timeout: 10 * time.Second}}
	if err := s.ctl.Ready(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return s
}

// network creates a network on the controller and returns its ID.
func (s *selfHosted) network(t *testing.T, name string) string {
	t.Helper()
	return createNetwork(t, s.ctl, name)
}

// createNetwork creates a network with lab.NewNetwork's settings and returns its ID.
func createNetwork(t *testing.T, c *lab.Controller, name string) string {
	t.Helper()
	nw, err := c.CreateNetwork(t.Context(), lab.NewNetwork(name, netSubnet))
	if err != nil || len(nw.ID) != 16 {
		t.Fatalf("create network: %v %q", err, nw.ID)
	}
	return nw.ID
}

// member returns a home for a member with lab identity n and the root's planet, and the
// flags of ztnc-run that use it on loopback.
func (s *selfHosted) member(t *testing.T, n int) (*lab.Home, []string) {
	t.Helper()
	h := homeWith(t, n)
	b, err := os.ReadFile(s.planet)
	if err != nil {
		t.Fatal(err)
	}
	h.SetPlanet(t, b)
	return h, []string{"--home", h.Dir, "--bind", "127.0.0.1", "--port", strconv.Itoa(lab.FreePort(t))}
}
