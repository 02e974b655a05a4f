package lab

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// BuildZtncRun builds ztnc-run into dir and returns its path. It runs `go build` on the
// package path, so it works from any directory inside the module. With ZTNC_RUN set (as for
// tests/compat) it builds nothing and returns that binary instead: `make race` runs the tests
// on a build with the race detector that way.
func BuildZtncRun(dir string) (string, error) {
	if bin := os.Getenv("ZTNC_RUN"); bin != "" {
		return exec.LookPath(bin)
	}
	out := dir + "/ztnc-run"
	b, err := exec.Command("go", "build", "-o", out, "github.com/ztnc/ztnc/cmd/ztnc-run").CombinedOutput()
	if err != nil {
		return "", &buildError{err: err, out: strings.TrimSpace(string(b))}
	}
	return out, nil
}

// BuildZtncRunTemp builds ztnc-run into a new temporary directory named after prefix, for a
// TestMain, and returns its path and a function that removes the directory.
func BuildZtncRunTemp(prefix string) (string, func(), error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	bin, err := BuildZtncRun(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "build ztnc-run: " + e.err.Error() + ": " + e.out }

// ZtncMember is ztnc-run as a lab member: a WrappedMember whose wrapper is
// `ztnc-run --home <home> --nwid <nwid> [flags] --`, with the addresses the controller
// assigned it from its pools.
type ZtncMember struct {
	*WrappedMember
	// Addr6 is its first assigned IPv6 address that is neither RFC 4193 nor 6PLANE (from a
	// pool), else invalid.
	Addr6 netip.Addr
}

// ztncStatusOK matches ztnc-run's status line for a network that came up, with its addresses.
var ztncStatusOK = regexp.MustCompile(`msg="network status" .*status=OK .*addresses="?\[([^\]]*)\]`)

// StartZtncMember makes home, which the controller of nwid must have authorized (with or
// without fixed addresses), a ztnc-run member in h. It runs `ztnc-run ... -- true` once and
// reads the assigned addresses from the status line on its stderr; programs started on the
// member's endpoint later run under the same wrapper, so the same identity and addresses.
// timeout is ztnc-run's --wait. Only one wrapped program may run at a time per home.
func StartZtncMember(t T, bin string, h *Host, home *Home, nwid string, timeout time.Duration) *ZtncMember {
	t.Helper()
	wrap := func(nwid string, argv []string) []string {
		return append([]string{bin, "--home", home.Dir, "--nwid", nwid, "--wait", timeout.String(), "--"}, argv...)
	}
	out := h.Run(t, "sh", append([]string{"-c", `exec "$@" 2>&1`, "sh"}, wrap(nwid, []string{"true"})...)...)
	m := &ZtncMember{WrappedMember: &WrappedMember{Host: h, Home: home, Wrap: wrap, Ready: []string{"true"}}}
	s := ztncStatusOK.FindStringSubmatch(out)
	if s == nil {
		t.Fatalf("ztnc-run in %s printed no status=OK line:\n%s", h.Name, out)
	}
	for _, f := range strings.Fields(s[1]) {
		p, err := netip.ParsePrefix(f)
		switch {
		case err != nil:
		case p.Addr().Is4():
			if !m.Addr.IsValid() {
				m.Addr = p.Addr()
			}
		case p.Bits() != 88 && p.Bits() != 40 && !m.Addr6.IsValid():
			m.Addr6 = p.Addr()
		}
	}
	if !m.Addr.IsValid() {
		t.Fatalf("ztnc-run in %s got no IPv4 address: %s", h.Name, s[0])
	}
	if m.Addr6.IsValid() {
		t.Logf("ztnc-run member %s in %s: %s, %s", home.Address(), h.Name, m.Addr, m.Addr6)
	} else {
		t.Logf("ztnc-run member %s in %s: %s", home.Address(), h.Name, m.Addr)
	}
	return m
}

// ZtncControllerPort is where StartZtncController's controller listens: UDP on the host's
// address, and its API on the host's 127.0.0.1 (TCP).
const ZtncControllerPort = 9993

// StartZtncRoot runs `ztnc-run root` in h, bound to h.Addr at LabRootPort, with identity
// (secret form), and returns the planet it writes, which names it: give it to the nodes
// (Home.SetPlanet, or ztnc-run --planet) that are to use this root.
func StartZtncRoot(t T, bin string, h *Host, identity string) []byte {
	t.Helper()
	home := NewHome(t)
	home.SetIdentity(t, identity)
	p := h.Start(t, bin, "root", "--home", home.Dir, "--bind", h.Addr.String(), "--port", strconv.Itoa(LabRootPort))
	planet, err := WaitFile(home.Path("planet"), 30*time.Second)
	if err != nil {
		t.Fatalf("ztnc-run root in %s: %v\n%s", h.Name, err, p.Output())
	}
	return planet
}

// StartZtncController runs `ztnc-run controller` in h, bound to h.Addr at ZtncControllerPort,
// with identity and planet, and returns a client for its API once it is ready.
func StartZtncController(t T, bin string, h *Host, identity string, planet []byte) *Controller {
	t.Helper()
	home := NewHome(t)
	home.SetIdentity(t, identity)
	home.SetPlanet(t, planet)
	p := h.Start(t, bin, "controller", "--home", home.Dir, "--bind", h.Addr.String(),
		"--port", strconv.Itoa(ZtncControllerPort))
	token, err := WaitFile(home.Path("authtoken.secret"), 30*time.Second)
	if err != nil {
		t.Fatalf("ztnc-run controller in %s: %v\n%s", h.Name, err, p.Output())
	}
	c := &Controller{
		Address: home.Address(),
		URL:     "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ZtncControllerPort)),
		Token:   strings.TrimSpace(string(token)),
		Client:  h.HTTPClient(),
	}
	if err := c.Ready(30 * time.Second); err != nil {
		t.Fatalf("ztnc-run controller in %s: %v\n%s", h.Name, err, p.Output())
	}
	return c
}
