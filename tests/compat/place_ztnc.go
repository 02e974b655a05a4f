package compat

import (
	"context"
	"fmt"
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
// server's address is the one the controller assigned to its member. Until ztnc-run has a
// controller, zerotier-one's stands in when $ZT1_BIN names one (the report says so).
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
	if err := z.hasSubcommand("root", "--home", "--bind", "--port"); err != nil {
		return nil, unavailable("%v", err)
	}
	ownController := z.hasSubcommand("controller", "--home", "--bind", "--port", "--planet")
	zt1 := os.Getenv(lab.ZT1BinEnv)
	if ownController != nil && zt1 == "" {
		return nil, unavailable("%v (set %s to a zerotier-one 1.14 binary to use its controller meanwhile)", ownController, lab.ZT1BinEnv)
	}
	n := &ztNetwork{env: env, z: z, lab: lab.New(t, lab.Config{}), missing: z.missingFeatures(t, env.Agent),
		nextIP: ztSubnet.Addr().Next()}
	if err := n.start(t, ownController == nil); err != nil {
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
	ctl     *lab.Controller
	nwid    string
	detail  string

	mu      sync.Mutex
	nextIP  netip.Addr
	members atomic.Int32
}

// start brings up the root and the controller and creates the network.
func (n *ztNetwork) start(t lab.T, ownController bool) error {
	t.Helper()
	rootHost, ctlHost := n.lab.AddHost("root", ""), n.lab.AddHost("ctl", "")
	rootHome := filepath.Join(n.env.Dir, "zt-root")
	if err := os.MkdirAll(rootHome, 0o700); err != nil {
		return err
	}
	root := rootHost.Start(t, n.z.Path, "root", "--home", rootHome, "--bind", rootHost.Addr.String(), "--port", ztPort)
	n.planet = filepath.Join(rootHome, "planet")
	planet, err := waitFileWhile(root, n.planet)
	if err != nil {
		return fmt.Errorf("ztnc-run root wrote no planet: %w", err)
	}
	if ownController {
		n.detail = n.z.Source
		if n.ctl, err = n.startController(t, ctlHost); err != nil {
			return err
		}
	} else {
		n.detail = n.z.Source + "; controller: zerotier-one ($" + lab.ZT1BinEnv + "), as ztnc-run has none yet"
		home := lab.NewHome(t)
		home.SetPlanet(t, planet)
		n.ctl = lab.StartZT1(t, ctlHost, lab.ZT1Config{Home: home}).Controller()
	}
	if err := n.ctl.Ready(30 * time.Second); err != nil {
		return fmt.Errorf("controller API: %w", err)
	}
	network := lab.NewNetwork("ztnc-compat", ztSubnet)
	network.Routes = append(network.Routes, lab.Route{Target: ztSubnet6.String()})
	created, err := n.ctl.CreateNetwork(context.Background(), network)
	if err != nil {
		return err
	}
	n.nwid = created.ID
	t.Logf("zt: network %s on controller %s, planet %s", n.nwid, n.ctl.Address, n.planet)
	return nil
}

// startController runs `ztnc-run controller` in h and returns a client for its API.
func (n *ztNetwork) startController(t lab.T, h *lab.Host) (*lab.Controller, error) {
	t.Helper()
	home := filepath.Join(n.env.Dir, "zt-controller")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	p := h.Start(t, n.z.Path, "controller", "--home", home, "--bind", h.Addr.String(), "--port", ztPort, "--planet", n.planet)
	token, err := waitFileWhile(p, filepath.Join(home, "authtoken.secret"))
	if err != nil {
		return nil, fmt.Errorf("ztnc-run controller: %w", err)
	}
	id, err := waitFileWhile(p, filepath.Join(home, "identity.public"))
	if err != nil {
		return nil, fmt.Errorf("ztnc-run controller: %w", err)
	}
	addr, _, _ := strings.Cut(string(id), ":")
	return &lab.Controller{Address: addr, URL: "http://127.0.0.1:" + ztPort,
		Token: strings.TrimSpace(string(token)), Client: h.HTTPClient()}, nil
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

func (n *ztNetwork) Missing(f Feature) string { return n.missing[f] }
func (n *ztNetwork) Detail() string           { return n.detail }

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
		if err := n.ctl.Authorize(context.Background(), n.nwid, node, ip, ip6); err != nil {
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
