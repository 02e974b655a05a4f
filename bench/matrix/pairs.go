package main

import (
	"context"
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
	// lacks says why the pair cannot carry what a measurement needs (measurement.needs).
	lacks map[string]string
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
// virtual network in the third documentation /24.
const (
	memberAAddr = "192.0.2.2"
	memberBAddr = "198.51.100.2"
)

var ztSubnet = netip.MustParsePrefix("203.0.113.0/24")

var pairs = []pair{
	{
		name:      "veth",
		about:     "two namespaces on one Linux bridge, MTU 1500: the physical limit of this machine",
		available: func() string { return "" },
		setup: func(t lab.T) (*lab.Endpoint, *lab.Endpoint, *startup) {
			l := lab.New(t, lab.Config{})
			return l.AddHost("a", "").Endpoint(), l.AddHost("b", "").Endpoint(), nil
		},
	},
	{
		name:  "zt1",
		about: "zerotier-one members with kernel TAP devices (network MTU 2800) over the same kind of bridge (MTU 1500), zerotier-one root + controller in a third namespace",
		available: func() string {
			if os.Getenv(lab.ZT1BinEnv) == "" {
				return lab.ZT1BinEnv + " not set"
			}
			return ""
		},
		setup: setupZT1,
	},
	{
		name: "ztnc",
		about: "programs under ztnc-run --nwid (each program run is a node process of its own, with the member's home) " +
			"on a network of our root and controller (ztnc-run root and ztnc-run controller in two more namespaces), " +
			"network MTU 2800, over the same kind of bridge (MTU 1500)",
		available: func() string { return "" },
		setup:     setupZtnc,
		lacks: map[string]string{
			"udp":  "UDP sockets of programs under ztnc-run are still the host's (issue 5)",
			"icmp": "ping's ICMP socket under ztnc-run is the host's",
		},
	},
}

// setupZT1 runs a zerotier-one root + controller and two zerotier-one members; B's start is
// the measured cold start.
func setupZT1(t lab.T) (*lab.Endpoint, *lab.Endpoint, *startup) {
	nw := startZT1Network(t)
	startMember := func(host *lab.Host, identity string) func() lab.Member {
		home := lab.NewLabHome(t, identity)
		home.PreJoin(t, nw.nwid)
		if err := nw.ctrl.Authorize(context.Background(), nw.nwid, home.Address()); err != nil {
			t.Fatalf("%v", err)
		}
		return func() lab.Member { return lab.StartZT1(t, host, lab.ZT1Config{Home: home}) }
	}
	a := startMember(nw.lab.AddHost("a", memberAAddr), lab.Identity(2))().WaitNetwork(t, nw.nwid, time.Minute)
	startB := startMember(nw.lab.AddHost("b", memberBAddr), lab.Identity(3))
	b, st := coldStart(t, a, nw.nwid, startB)
	return a, b, st
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
