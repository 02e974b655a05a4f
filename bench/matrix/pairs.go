package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// A pair is two endpoints that the same server (on A) and client (on B) programs run on.
// Adding a kind of pair is adding one of these: setup builds it in a lab and returns the
// endpoints, whose Wrap field puts programs under a wrapper such as ztnc-run.
type pair struct {
	name  string // column header
	about string // one line for the report
	// available says why the pair cannot run here ("" when it can).
	available func() string
	// setup builds the pair; every process of its members starts in cg (the pair's CPU
	// account), which may be nil.
	setup func(t lab.T, cg *cpuGroup) (a, b *lab.Endpoint, st *startup)
}

// startup is what a ZeroTier pair measures when its client member B starts cold (fresh
// process, identity and network membership pre-provisioned, controller already authorized).
type startup struct {
	toOK        time.Duration // B's start → network OK with its address usable
	toFirstByte time.Duration // B's start → first HTTP response byte from a server on A
}

// Lab addresses for ZeroTier pairs: root at the lab planet's address, the members in other
// /24s than each other (zerotier-one checks one new identity per source /24 every 2 s), the
// virtual network in the third documentation /24 with fixed addresses for A and B.
const (
	memberAAddr   = "192.0.2.2"
	memberBAddr   = "198.51.100.2"
	controllerAdr = "192.0.2.3"
)

var (
	ztSubnet = netip.MustParsePrefix("203.0.113.0/24")
	ztAddrA  = netip.MustParseAddr("203.0.113.10")
	ztAddrB  = netip.MustParseAddr("203.0.113.20")
)

var (
	ztncRun     = flag.String("ztnc-run", "bin/ztnc-run", "ztnc-run binary for the ztnc pair")
	ztncBase    = flag.String("ztnc-base", "", "a second ztnc-run binary (e.g. main's) measured as pair ztnc-base, side by side with -ztnc-run")
	profileDir  = flag.String("profile-dir", "", "write a Go CPU profile of every ztnc-run member process into this directory")
	ztncFlags   = flag.String("ztnc-flags", "", "extra flags for every ztnc-run member (space-separated, e.g. -v)")
	profileSeq  atomic.Int64
	vethPair    = pair{name: "veth", about: "two namespaces on one Linux bridge, MTU 1500: the physical limit of this machine", available: func() string { return "" }, setup: setupVeth}
	zt1Pair     = pair{name: "zt1", about: "zerotier-one members with kernel TAP devices (network MTU 2800) over the same kind of bridge (MTU 1500), zerotier-one root + controller in a third and fourth namespace", available: zt1Available, setup: setupZT1}
	pairsByName = map[string]func() pair{
		"veth":      func() pair { return vethPair },
		"zt1":       func() pair { return zt1Pair },
		"ztnc":      func() pair { return ztncPair("ztnc", *ztncRun) },
		"ztnc-base": func() pair { return ztncPair("ztnc-base", *ztncBase) },
	}
	// pairOrder is the column order; ztnc-base only runs when -ztnc-base is given.
	pairOrder = []string{"veth", "zt1", "ztnc-base", "ztnc"}
)

func setupVeth(t lab.T, cg *cpuGroup) (*lab.Endpoint, *lab.Endpoint, *startup) {
	l := lab.New(t, lab.Config{})
	return cg.wrap(l.AddHost("a", "").Endpoint()), cg.wrap(l.AddHost("b", "").Endpoint()), nil
}

func zt1Available() string {
	if os.Getenv(lab.ZT1BinEnv) == "" {
		return lab.ZT1BinEnv + " not set"
	}
	return ""
}

func setupZT1(t lab.T, cg *cpuGroup) (*lab.Endpoint, *lab.Endpoint, *startup) {
	l := lab.New(t, lab.Config{})
	root := lab.StartZT1(t, l.AddHost("root", lab.LabRootAddr), lab.ZT1Config{
		Home: lab.NewLabHome(t, lab.Identity(1)),
		Port: lab.LabRootPort,
	})
	ctrl := root.Controller()
	if err := ctrl.Ready(30 * time.Second); err != nil {
		t.Fatalf("%v", err)
	}
	net := &ztNetwork{lab: l, ctrl: ctrl, planet: lab.LabPlanet}
	net.create(t)
	return net.pair(t, cg, func(t lab.T, h *lab.Host, home *lab.Home, _ netip.Addr) lab.Member {
		z := lab.StartZT1(t, h, lab.ZT1Config{Home: home})
		cg.add(t, z.Proc.Pid())
		return z
	})
}

// ztncPair is a pair of ztnc-run members using binary bin, with bin's own root and controller.
func ztncPair(name, bin string) pair {
	controller := "`ztnc-run controller`"
	if bin != "" && !hasController(bin) {
		controller = "zerotier-one's controller (this build has no controller command)"
	}
	return pair{
		name: name,
		about: fmt.Sprintf("`ztnc-run --nwid` members (%s; user-space stack, no TAP device; each program is its own node process) "+
			"on a network of %s, through `ztnc-run root`", bin, controller),
		available: func() string {
			if bin == "" {
				return "no binary (-ztnc-base PATH)"
			}
			if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
				return fmt.Sprintf("no ztnc-run binary at %s (make build, or -ztnc-run PATH)", bin)
			}
			return ""
		},
		setup: func(t lab.T, cg *cpuGroup) (*lab.Endpoint, *lab.Endpoint, *startup) {
			net := startZtncNetwork(t, bin)
			return net.pair(t, cg, func(t lab.T, h *lab.Host, home *lab.Home, addr netip.Addr) lab.Member {
				return &lab.WrappedMember{Host: h, Home: home, Addr: addr, Ready: []string{"true"},
					Wrap: func(nwid string, argv []string) []string {
						w := append([]string{bin, "--home", home.Dir, "--nwid", nwid}, strings.Fields(*ztncFlags)...)
						if *profileDir != "" {
							prog := filepath.Base(argv[0])
							w = append(w, "--cpuprofile", filepath.Join(*profileDir,
								fmt.Sprintf("%s-%s-%03d-%s.prof", name, h.Name, profileSeq.Add(1), prog)))
						}
						return append(append(w, "--"), argv...)
					}}
			})
		},
	}
}

// newMember starts (or, for a wrapper, prepares) a member in h with a provisioned home whose
// address the controller has authorized with address addr on the network.
type newMember func(t lab.T, h *lab.Host, home *lab.Home, addr netip.Addr) lab.Member

// ztNetwork is a root + controller with one network, in a lab.
type ztNetwork struct {
	lab    *lab.Lab
	ctrl   *lab.Controller
	planet []byte
	nwid   string
}

func (n *ztNetwork) create(t lab.T) {
	nw, err := n.ctrl.CreateNetwork(context.Background(), lab.NewNetwork("bench", ztSubnet))
	if err != nil {
		t.Fatalf("%v", err)
	}
	n.nwid = nw.ID
}

// startZtncNetwork runs `bin root` and `bin controller` in a new lab and creates the network.
func startZtncNetwork(t lab.T, bin string) *ztNetwork {
	l := lab.New(t, lab.Config{})
	rootHost, ctlHost := l.AddHost("root", lab.LabRootAddr), l.AddHost("ctl", controllerAdr)
	rootHome, ctlHome := t.TempDir(), t.TempDir()
	port := fmt.Sprint(lab.LabRootPort)
	root := rootHost.Start(t, bin, "root", "--home", rootHome, "--bind", rootHost.Addr.String(), "--port", port)
	planet := waitFileWhile(t, root, filepath.Join(rootHome, "planet"))
	n := &ztNetwork{lab: l, planet: planet}
	if hasController(bin) {
		ctl := ctlHost.Start(t, bin, "controller", "--home", ctlHome, "--bind", ctlHost.Addr.String(),
			"--port", "9993", "--planet", filepath.Join(rootHome, "planet"))
		token := waitFileWhile(t, ctl, filepath.Join(ctlHome, "authtoken.secret"))
		id := waitFileWhile(t, ctl, filepath.Join(ctlHome, "identity.public"))
		addr, _, _ := strings.Cut(string(id), ":")
		n.ctrl = &lab.Controller{Address: addr, URL: "http://127.0.0.1:9993",
			Token: strings.TrimSpace(string(token)), Client: ctlHost.HTTPClient()}
	} else {
		// Builds without the controller command: zerotier-one's controller, on our root.
		if zt1Available() != "" {
			t.Fatalf("%s has no controller command and %s is not set for zerotier-one's", bin, lab.ZT1BinEnv)
		}
		fmt.Fprintf(os.Stderr, "matrix: %s has no controller command: using zerotier-one's\n", bin)
		home := lab.NewHome(t)
		home.SetPlanet(t, planet)
		n.ctrl = lab.StartZT1(t, ctlHost, lab.ZT1Config{Home: home}).Controller()
	}
	if err := n.ctrl.Ready(30 * time.Second); err != nil {
		t.Fatalf("%v", err)
	}
	n.create(t)
	return n
}

// hasController reports whether bin has the controller command.
func hasController(bin string) bool {
	out, err := exec.Command(bin, "controller", "--help").CombinedOutput()
	return err == nil && strings.Contains(string(out), "--planet")
}

// waitFileWhile waits for a file that a program writes, failing if it exits first.
func waitFileWhile(t lab.T, p *lab.Proc, path string) []byte {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b
		}
		if !p.Running() {
			t.Fatalf("%s exited (%v) before it wrote %s", p.Name, p.Wait(), path)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s wrote no %s in 30 s", p.Name, path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pair adds members A and B made by start, A first; B's start is the measured cold start.
func (n *ztNetwork) pair(t lab.T, cg *cpuGroup, start newMember) (*lab.Endpoint, *lab.Endpoint, *startup) {
	member := func(name, physAddr string, identity string, addr netip.Addr) func() lab.Member {
		host := n.lab.AddHost(name, physAddr)
		home := lab.NewHome(t)
		home.SetPlanet(t, n.planet)
		home.SetIdentity(t, identity)
		home.PreJoin(t, n.nwid)
		if err := n.ctrl.Authorize(context.Background(), n.nwid, home.Address(), addr); err != nil {
			t.Fatalf("%v", err)
		}
		return func() lab.Member { return start(t, host, home, addr) }
	}
	a := cg.wrap(member("a", memberAAddr, lab.Identity(2), ztAddrA)().WaitNetwork(t, n.nwid, time.Minute))
	b, st := coldStart(t, a, n.nwid, member("b", memberBAddr, lab.Identity(3), ztAddrB))
	if a.Addr != ztAddrA || b.Addr != ztAddrB {
		t.Fatalf("members at %s and %s, want %s and %s", a.Addr, b.Addr, ztAddrA, ztAddrB)
	}
	return a, cg.wrap(b), st
}

// coldStart serves a file on a, starts member B and measures its time to network OK and to
// the first byte of an HTTP response from a (curl run on B, retried every 50 ms).
func coldStart(t lab.T, a *lab.Endpoint, nwid string, start func() lab.Member) (*lab.Endpoint, *startup) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	httpd := a.Start(t, "busybox", "httpd", "-f", "-p", lab.HostPort(a.Addr, 8000), "-h", dir)
	defer httpd.Stop()
	url := fmt.Sprintf("http://%s/hello.txt", lab.HostPort(a.Addr, 8000))

	t0 := time.Now()
	m := start()
	b := m.WaitNetwork(t, nwid, time.Minute)
	st := &startup{toOK: time.Since(t0)}
	deadline := t0.Add(time.Minute)
	for {
		if _, err := b.Exec(t, "curl", "-sS", "-o", "/dev/null", "--max-time", "1", url); err == nil {
			st.toFirstByte = time.Since(t0)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no answer from %s within a minute of B's start", b.Name, url)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return b, st
}
