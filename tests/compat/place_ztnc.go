package compat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztnc/ztnc/tests/compat/agent"
	"github.com/ztnc/ztnc/tests/lab"
)

// localPlacement runs server and client under one `ztnc-run --local`: both are children of
// the same agent, so they share its private network and reach each other through ztnc's
// stack. ztnc-run runs in a network namespace of its own, so that nothing can pass through
// the host's network by accident.
type localPlacement struct{}

func (localPlacement) Name() string { return "local" }
func (localPlacement) About() string {
	return "server and client under one `ztnc-run --local " + localNet + " --local " + localNet6 + "` (in a namespace of its own)"
}

func (localPlacement) Open(t lab.T, env *Env) (Network, error) {
	t.Helper()
	z, err := env.Ztnc()
	if err != nil {
		return nil, err
	}
	if missing := z.lacksFlags("--local"); len(missing) > 0 {
		return nil, unavailable("`ztnc-run --help` has no %s", strings.Join(missing, ", "))
	}
	if err := z.probeLocal(t); err != nil {
		return nil, unavailable("%v", err)
	}
	return &localNetwork{env: env, z: z, missing: z.missingFeatures(t, env.Agent)}, nil
}

type localNetwork struct {
	env     *Env
	z       *ztncRun
	missing map[Feature]string
}

func (n *localNetwork) Missing(f Feature) string { return n.missing[f] }
func (n *localNetwork) Detail() string           { return n.z.Source }

func (n *localNetwork) Pair(t lab.T, dir string) (server, client Endpoint) {
	h := lab.New(t, lab.Config{}).AddHost("local", "")
	wrapper := []string{n.z.Path, "--local", localNet}
	ep := Endpoint{Addr: netip.MustParsePrefix(localNet).Addr()}
	if n.missing[IPv6] == "" {
		wrapper = append(wrapper, "--local", localNet6)
		ep.Addr6 = netip.MustParsePrefix(localNet6).Addr()
	}
	ep.Agent = launchAgent(t, n.env, "ztnc", h.Argv(append(wrapper, "--")...), agentReadyTimeout)
	return ep, ep
}

// ZeroTier network of the zt placement: members get addresses from these documentation
// ranges, the same host number in each.
var (
	ztSubnet  = netip.MustParsePrefix("203.0.113.0/24")
	ztSubnet6 = netip.MustParsePrefix("2001:db8:203::/64")
	ztPort    = "9993"
)

// ztPlacement runs the server under one `ztnc-run --nwid N --home H1` and the client under
// another with its own home, each in a network namespace of a lab segment, on a network of our
// own controller and root (`ztnc-run controller`, `ztnc-run root`) in two more namespaces. The
// server's address is the one the controller assigned to its member.
type ztPlacement struct{}

func (ztPlacement) Name() string { return "zt" }
func (ztPlacement) About() string {
	return "server and client under two `ztnc-run --nwid` members (own homes, own namespaces) of a network of `ztnc-run controller`, through `ztnc-run root`"
}

// memberWait is what --wait gives ztnc-run to get its address; the agent behind it is ready
// only then.
const memberWait = 90 * time.Second

func (ztPlacement) Open(t lab.T, env *Env) (Network, error) {
	t.Helper()
	z, err := env.Ztnc()
	if err != nil {
		return nil, err
	}
	if missing := z.lacksFlags("--nwid", "--home", "--planet", "--wait"); len(missing) > 0 {
		return nil, unavailable("`ztnc-run --help` has no %s", strings.Join(missing, ", "))
	}
	for _, sub := range []string{"root", "controller"} {
		if err := z.hasSubcommand(sub, "--home", "--bind", "--port"); err != nil {
			return nil, unavailable("%v", err)
		}
	}
	n := &ztNetwork{env: env, z: z, lab: lab.New(t, lab.Config{}), missing: z.missingFeatures(t, env.Agent)}
	if err := n.start(t); err != nil {
		return nil, err
	}
	return n, nil
}

type ztNetwork struct {
	env     *Env
	z       *ztncRun
	missing map[Feature]string
	lab     *lab.Lab
	planet  string

	ctl      *lab.Host
	ctlAddr  string // the controller's ZeroTier address
	apiToken string
	nwid     string

	mu      sync.Mutex
	nextIP  netip.Addr
	members atomic.Int32
}

// start brings up the root and the controller and creates the network.
func (n *ztNetwork) start(t lab.T) error {
	t.Helper()
	root := n.lab.AddHost("root", "")
	n.ctl = n.lab.AddHost("ctl", "")
	rootHome, ctlHome := filepath.Join(n.env.Dir, "zt-root"), filepath.Join(n.env.Dir, "zt-controller")
	for _, d := range []string{rootHome, ctlHome} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	rootProc := root.Start(t, n.z.Path, "root", "--home", rootHome, "--bind", root.Addr.String(), "--port", ztPort)
	n.planet = filepath.Join(rootHome, "planet")
	if _, err := waitFileWhile(rootProc, n.planet); err != nil {
		return fmt.Errorf("ztnc-run root wrote no planet: %w", err)
	}
	ctlProc := n.ctl.Start(t, n.z.Path, "controller", "--home", ctlHome, "--bind", n.ctl.Addr.String(),
		"--port", ztPort, "--planet", n.planet)
	token, err := waitFileWhile(ctlProc, filepath.Join(ctlHome, "authtoken.secret"))
	if err != nil {
		return fmt.Errorf("ztnc-run controller: %w", err)
	}
	n.apiToken = strings.TrimSpace(string(token))
	id, err := waitFileWhile(ctlProc, filepath.Join(ctlHome, "identity.public"))
	if err != nil {
		return fmt.Errorf("ztnc-run controller: %w", err)
	}
	n.ctlAddr, _, _ = strings.Cut(string(id), ":")

	// The API comes up with the controller; poll it until it answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status map[string]any
		err = n.api("GET", "/controller", nil, &status)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("controller API: %w", err)
	}
	var created struct {
		ID string `json:"id"`
	}
	err = n.api("POST", "/controller/network/"+n.ctlAddr+"______", map[string]any{
		"name":         "ztnc-compat",
		"private":      true,
		"v4AssignMode": map[string]bool{"zt": true},
		"ipAssignmentPools": []map[string]string{{
			"ipRangeStart": ztSubnet.Addr().Next().String(),
			"ipRangeEnd":   "203.0.113.254",
		}},
		"routes": []map[string]any{{"target": ztSubnet.String(), "via": nil}, {"target": ztSubnet6.String(), "via": nil}},
	}, &created)
	if err != nil {
		return fmt.Errorf("create network: %w", err)
	}
	if len(created.ID) != 16 {
		return fmt.Errorf("create network: answer has id %q", created.ID)
	}
	n.nwid = created.ID
	n.nextIP = ztSubnet.Addr().Next()
	t.Logf("zt: network %s on controller %s, planet %s", n.nwid, n.ctlAddr, n.planet)
	return nil
}

// waitFileWhile waits for a file that a program writes, and stops waiting if it exits.
func waitFileWhile(p *lab.Proc, path string) ([]byte, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			return b, nil
		}
		if !p.Running() {
			return nil, fmt.Errorf("%s exited (%v) before it wrote %s", p.Name, p.Wait(), path)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no %s after 30s", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// api calls the controller's HTTP API (zerotier-one's /controller subset) from inside the
// controller's namespace.
func (n *ztNetwork) api(method, path string, body, answer any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://127.0.0.1:"+ztPort+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-ZT1-Auth", n.apiToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.ctl.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, clip(string(b), 200))
	}
	if answer != nil {
		if err := json.Unmarshal(b, answer); err != nil {
			return fmt.Errorf("%s %s: %v", method, path, err)
		}
	}
	return nil
}

func (n *ztNetwork) Missing(f Feature) string { return n.missing[f] }
func (n *ztNetwork) Detail() string           { return n.z.Source }

func (n *ztNetwork) Pair(t lab.T, dir string) (server, client Endpoint) {
	t.Helper()
	i := n.members.Add(1)
	server = n.member(t, fmt.Sprintf("s%d", i), filepath.Join(dir, "zt-server"))
	client = n.member(t, fmt.Sprintf("c%d", i), filepath.Join(dir, "zt-client"))
	return server, client
}

// member starts an agent under `ztnc-run --nwid` in a new namespace with home as its home,
// authorizes the node with an address of its own and returns when the agent runs (ztnc-run
// starts it once the network is up).
func (n *ztNetwork) member(t lab.T, name, home string) Endpoint {
	t.Helper()
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatalf("%v", err)
	}
	n.mu.Lock()
	ip := n.nextIP
	n.nextIP = ip.Next()
	n.mu.Unlock()
	if !ztSubnet.Contains(ip) || ip == netip.MustParseAddr("203.0.113.255") {
		t.Fatalf("zt: %s has no free address left", ztSubnet)
	}
	b := ztSubnet6.Addr().As16()
	b[15] = ip.As4()[3]
	ip6 := netip.AddrFrom16(b)
	h := n.lab.AddHost(name, "")
	wrapper := h.Argv(n.z.Path, "--nwid", n.nwid, "--home", home, "--planet", n.planet,
		"--wait", memberWait.String(), "--")
	argv := append(wrapper, n.env.Agent...)
	t.Logf("%s: agent: %s", name, lab.Quote(argv))

	type launched struct {
		a   *agent.Client
		err error
	}
	ready := make(chan launched, 1)
	go func() {
		a, err := agent.Launch(argv, memberWait+30*time.Second, func(format string, args ...any) {
			t.Logf(name+": "+format, args...)
		})
		ready <- launched{a, err}
	}()
	var l launched
	authorized := false
	deadline := time.Now().Add(30 * time.Second)
	for !authorized {
		select {
		case l = <-ready:
			if l.err == nil {
				l.a.Close()
				t.Fatalf("%s: ztnc-run started the program before the member was authorized", name)
			}
			t.Fatalf("%s: %v", name, l.err)
		case <-time.After(100 * time.Millisecond):
		}
		id, err := os.ReadFile(filepath.Join(home, "identity.public"))
		if err != nil || len(id) < 10 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: ztnc-run wrote no %s/identity.public in 30s", name, home)
			}
			continue
		}
		node, _, _ := strings.Cut(string(id), ":")
		if err := n.api("POST", "/controller/network/"+n.nwid+"/member/"+node, map[string]any{
			"authorized":    true,
			"ipAssignments": []string{ip.String(), ip6.String()},
		}, nil); err != nil {
			t.Fatalf("%s: authorize %s: %v", name, node, err)
		}
		t.Logf("%s: node %s authorized as %s and %s on %s", name, node, ip, ip6, n.nwid)
		authorized = true
	}
	if l = <-ready; l.err != nil {
		t.Fatalf("%s: %v", name, l.err)
	}
	t.Cleanup(func() {
		if err := l.a.Close(); err != nil {
			t.Logf("%s: %v", name, err)
		}
	})
	return Endpoint{l.a, ip, ip6}
}
