package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
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
	setup     func(t lab.T) (a, b *lab.Endpoint, st *startup)
	bin       *string // the ztnc-run binary the pair runs, if any (for the report)
	// reference marks a pair that the later columns are compared with (a ratio column each):
	// the physical limit, zerotier-one, a before build.
	reference bool
}

// startup is what a ZeroTier pair measures when its client member B starts cold (fresh
// process, identity and network membership pre-provisioned, controller already authorized),
// one value per run; the cached variants start B again with the state its earlier runs left.
type startup struct {
	toOK        []time.Duration // B's start → network OK with its address usable
	toFirstByte []time.Duration // B's start → first HTTP response byte from a server on A

	cachedToOK, cachedToFirstByte []time.Duration
}

// Lab addresses for ZeroTier pairs: root at the lab planet's address, the members in other
// /24s than each other (zerotier-one checks one new identity per source /24 every 2 s), the
// virtual network in the third documentation /24 with fixed addresses for A and B.
const (
	memberAAddr = "192.0.2.2"
	memberBAddr = "198.51.100.2"
)

var (
	ztSubnet = netip.MustParsePrefix("203.0.113.0/24")
	ztAddrA  = netip.MustParseAddr("203.0.113.10")
	ztAddrB  = netip.MustParseAddr("203.0.113.20")
)

var pairs = []pair{
	{
		name:      "veth",
		reference: true,
		about:     "two namespaces on one Linux bridge, MTU 1500: the physical limit of this machine",
		available: func() string { return "" },
		setup: func(t lab.T) (*lab.Endpoint, *lab.Endpoint, *startup) {
			l := lab.New(t, lab.Config{})
			return l.AddHost("a", "").Endpoint(), l.AddHost("b", "").Endpoint(), nil
		},
	},
	{
		name:      "zt1",
		reference: true,
		about:     "zerotier-one members with kernel TAP devices (network MTU 2800) over the same kind of bridge (MTU 1500), zerotier-one root + controller in a third namespace",
		available: func() string {
			if os.Getenv(lab.ZT1BinEnv) == "" {
				return lab.ZT1BinEnv + " not set"
			}
			return ""
		},
		setup: zeroTierPair(func(t lab.T, h *lab.Host, home *lab.Home, _ netip.Addr) lab.Member {
			return lab.StartZT1(t, h, lab.ZT1Config{Home: home})
		}),
	},
	{
		name:  "ztnc",
		about: "ztnc-run members (user-space stack, no TAP device; each program is its own node process) with the zt1 pair's zerotier-one root + controller",
		bin:   ztncRun,
		available: func() string {
			if os.Getenv(lab.ZT1BinEnv) == "" {
				return lab.ZT1BinEnv + " not set (its root + controller serve this pair)"
			}
			return binaryMissing(*ztncRun, "-ztnc-run")
		},
		setup: zeroTierPair(func(t lab.T, h *lab.Host, home *lab.Home, addr netip.Addr) lab.Member {
			return &lab.WrappedMember{Host: h, Home: home, Addr: addr, Ready: []string{"true"},
				Wrap: memberWrap("ztnc", h, func(nwid string, argv []string) []string {
					return append([]string{*ztncRun, "--home", home.Dir, "--nwid", nwid, "--"}, argv...)
				})}
		}),
	},
	ztncSelfPair("ztnc-self-base", ztncBase, "-ztnc-base",
		"the ztnc-self set-up with another build of ztnc-run (-ztnc-base: root, controller and members), "+
			"interleaved with ztnc-self for a before/after comparison", true),
	ztncSelfPair("ztnc-self", ztncRun, "-ztnc-run",
		"ztnc-run members like ztnc's on a network of our own root and controller (ztnc-run root and "+
			"ztnc-run controller in two more namespaces): the self-hosted set-up, no zerotier-one involved", false),
}

// binaryMissing says why the ztnc-run binary at path, given by flagName, cannot be used ("" if
// it can).
func binaryMissing(path, flagName string) string {
	if path == "" {
		return flagName + " not given"
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		return fmt.Sprintf("no ztnc-run binary at %s (make build, or %s PATH)", path, flagName)
	}
	return ""
}

var (
	ztncRun  = flag.String("ztnc-run", "bin/ztnc-run", "ztnc-run binary of the ztnc and ztnc-self pairs")
	ztncBase = flag.String("ztnc-base", "", "another ztnc-run binary (e.g. an older revision's), measured as pair ztnc-self-base interleaved with ztnc-self")
)

// newMember starts (or, for a wrapper, prepares) a member in h with a provisioned home whose
// address the controller has authorized with address addr on the network.
type newMember func(t lab.T, h *lab.Host, home *lab.Home, addr netip.Addr) lab.Member

// zeroTierPair returns the setup of a pair of members made by newMember on a zerotier-one root +
// controller; B's start is the measured cold start.
func zeroTierPair(start newMember) func(lab.T) (*lab.Endpoint, *lab.Endpoint, *startup) {
	return func(t lab.T) (*lab.Endpoint, *lab.Endpoint, *startup) {
		nw := startZT1Network(t)
		member := func(name, physAddr string, identity string, addr netip.Addr) func() lab.Member {
			host := nw.lab.AddHost(name, physAddr)
			home := lab.NewLabHome(t, identity)
			home.PreJoin(t, nw.nwid)
			if err := nw.ctrl.Authorize(context.Background(), nw.nwid, home.Address(), addr); err != nil {
				t.Fatalf("%v", err)
			}
			return func() lab.Member { return start(t, host, home, addr) }
		}
		a := member("a", memberAAddr, lab.Identity(2), ztAddrA)().WaitNetwork(t, nw.nwid, time.Minute)
		b, st := coldStart(t, a, nw.nwid, member("b", memberBAddr, lab.Identity(3), ztAddrB))
		if a.Addr != ztAddrA || b.Addr != ztAddrB {
			t.Fatalf("members at %s and %s, want %s and %s", a.Addr, b.Addr, ztAddrA, ztAddrB)
		}
		return a, b, st
	}
}

// ztNetwork is a zerotier-one root + controller with one network.
type ztNetwork struct {
	lab  *lab.Lab
	ctrl *lab.Controller
	nwid string
}

func startZT1Network(t lab.T) *ztNetwork {
	l := lab.New(t, lab.Config{})
	root := lab.StartZT1(t, l.AddHost("root", lab.LabRootAddr), lab.ZT1Config{
		Home: lab.NewLabHome(t, lab.Identity(1)),
		Port: lab.LabRootPort,
	})
	ctrl := root.Controller()
	if err := ctrl.Ready(30 * time.Second); err != nil {
		t.Fatalf("%v", err)
	}
	n, err := ctrl.CreateNetwork(context.Background(), lab.NewNetwork("bench", ztSubnet))
	if err != nil {
		t.Fatalf("%v", err)
	}
	return &ztNetwork{lab: l, ctrl: ctrl, nwid: n.ID}
}

// serveHello serves hello.txt ("hello\n") with busybox httpd on a at port 8000 and returns its
// URL and the server, for the caller to stop.
func serveHello(t lab.T, a *lab.Endpoint) (string, *lab.Proc) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	httpd := a.Start(t, "busybox", "httpd", "-f", "-p", lab.HostPort(a.Addr, 8000), "-h", dir)
	return fmt.Sprintf("http://%s/hello.txt", lab.HostPort(a.Addr, 8000)), httpd
}

// coldStart serves a file on a, starts member B and measures its time to network OK and to
// the first byte of an HTTP response from a (curl run on B, retried every 50 ms).
func coldStart(t lab.T, a *lab.Endpoint, nwid string, start func() lab.Member) (*lab.Endpoint, *startup) {
	url, httpd := serveHello(t, a)
	defer httpd.Stop()

	t0 := time.Now()
	m := start()
	b := m.WaitNetwork(t, nwid, time.Minute)
	st := &startup{toOK: []time.Duration{time.Since(t0)}}
	deadline := t0.Add(time.Minute)
	for {
		if _, err := b.Exec(t, "curl", "-sS", "-o", "/dev/null", "--max-time", "1", url); err == nil {
			st.toFirstByte = []time.Duration{time.Since(t0)}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no answer from %s within a minute of B's start", b.Name, url)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return b, st
}
