package lab

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// nsPrefix starts the name of every namespace a lab creates; the PID follows, so that a lab can
// tell the namespaces of dead test binaries from those of running ones.
const nsPrefix = "ztlab-"

// netnsDir is where `ip netns` keeps named namespaces.
const netnsDir = "/run/netns"

// Subnets are the only IPv4 ranges a lab hands out (RFC 5737 documentation ranges).
var Subnets = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
}

// Subnet6 is the IPv6 prefix of hosts' addresses when Config.IPv6 is set (RFC 3849).
var Subnet6 = netip.MustParsePrefix("2001:db8::/64")

// Config describes a lab segment.
type Config struct {
	// MTU of the bridge and every veth; 0 means 1500.
	MTU int
	// IPv6 also gives every host an address in Subnet6 (the IPv4 address in the low 32 bits).
	IPv6 bool
}

// Lab is one Ethernet segment: a bridge in its own namespace and hosts plugged into it.
type Lab struct {
	// Name is the stem of the lab's namespace names: ztlab-<pid>-<seq>-<test>.
	Name string
	// Bridge is the bridge's namespace; its Iface is the bridge device (for tcpdump).
	Bridge *Host

	t   T
	cfg Config

	mu      sync.Mutex
	hosts   []*Host
	subnets []netip.Prefix // the /24s hosts use, each routed on-link in every host
}

var (
	labSeq    atomic.Int64
	reapStale sync.Once
)

// New creates an empty lab segment and registers its teardown with t.Cleanup: processes left
// in its namespaces are killed and the namespaces deleted.
func New(t T, cfg Config) *Lab {
	t.Helper()
	Require(t)
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	reapStale.Do(func() { reapStaleNamespaces(t) })
	l := &Lab{
		Name: fmt.Sprintf("%s%d-%d-%s", nsPrefix, os.Getpid(), labSeq.Add(1), shortName(t.Name())),
		t:    t,
		cfg:  cfg,
	}
	l.Bridge = &Host{Name: "bridge", NS: l.Name + ".br", Iface: "br0"}
	t.Cleanup(l.teardown)
	mtu := strconv.Itoa(cfg.MTU)
	l.must("netns", "add", l.Bridge.NS)
	l.must("-n", l.Bridge.NS, "link", "set", "lo", "up")
	// No STP and no multicast snooping: ports forward at once and NDP/ZeroTier multicast
	// reach everyone.
	l.must("-n", l.Bridge.NS, "link", "add", "br0", "mtu", mtu, "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	l.must("-n", l.Bridge.NS, "link", "set", "br0", "up")
	t.Logf("lab %s: bridge namespace %s, MTU %d", l.Name, l.Bridge.NS, cfg.MTU)
	return l
}

// AddHost adds a host namespace named name (letters, digits, '-' or '_') with eth0 plugged into
// the bridge. addr is its IPv4 address, from one of Subnets; "" picks the next free one in
// 192.0.2.0/24. Hosts in different Subnets reach each other directly: every host routes every
// subnet in use on-link.
func (l *Lab) AddHost(name, addr string) *Host {
	l.t.Helper()
	if !validName.MatchString(name) {
		l.t.Fatalf("lab: bad host name %q", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h.Name == name {
			l.t.Fatalf("lab: host %q exists", name)
		}
	}
	a, subnet := l.pickAddr(addr)
	h := &Host{Name: name, NS: l.Name + "-" + name, Iface: "eth0", Addr: a}
	if l.cfg.IPv6 {
		b := Subnet6.Addr().As16()
		copy(b[12:], a.AsSlice())
		h.Addr6 = netip.AddrFrom16(b)
	}
	port := fmt.Sprintf("p%d", len(l.hosts))
	mtu := strconv.Itoa(l.cfg.MTU)
	l.must("netns", "add", h.NS)
	l.hosts = append(l.hosts, h)
	l.must("-n", h.NS, "link", "set", "lo", "up")
	// IPv6 addresses that programs (zerotier-one on its TAP) add later are usable at once.
	if err := h.Do(func() error {
		err := os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0)
		if errors.Is(err, os.ErrNotExist) {
			return nil // no IPv6 in this kernel
		}
		return err
	}); err != nil {
		l.t.Fatalf("lab %s: %v", l.Name, err)
	}
	l.must("-n", l.Bridge.NS, "link", "add", port, "mtu", mtu, "type", "veth",
		"peer", "name", "eth0", "mtu", mtu, "netns", h.NS)
	l.must("-n", l.Bridge.NS, "link", "set", port, "master", "br0", "up")
	l.must("-n", h.NS, "addr", "add", netip.PrefixFrom(a, subnet.Bits()).String(), "dev", "eth0")
	if h.Addr6.IsValid() {
		l.must("-n", h.NS, "addr", "add", netip.PrefixFrom(h.Addr6, Subnet6.Bits()).String(),
			"dev", "eth0", "nodad")
	}
	l.must("-n", h.NS, "link", "set", "eth0", "up")

	newSubnet := true
	for _, s := range l.subnets {
		if s == subnet {
			newSubnet = false
		} else {
			l.must("-n", h.NS, "route", "add", s.String(), "dev", "eth0")
		}
	}
	if newSubnet {
		for _, other := range l.hosts[:len(l.hosts)-1] {
			l.must("-n", other.NS, "route", "add", subnet.String(), "dev", "eth0")
		}
		l.subnets = append(l.subnets, subnet)
	}
	if h.Addr6.IsValid() {
		l.t.Logf("lab %s: host %s = namespace %s, %s, %s", l.Name, name, h.NS, a, h.Addr6)
	} else {
		l.t.Logf("lab %s: host %s = namespace %s, %s", l.Name, name, h.NS, a)
	}
	return h
}

// Hosts returns the hosts in the order they were added.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.hosts...)
}

// MTU is the segment's MTU.
func (l *Lab) MTU() int { return l.cfg.MTU }

func (l *Lab) pickAddr(addr string) (netip.Addr, netip.Prefix) {
	used := func(a netip.Addr) bool {
		for _, h := range l.hosts {
			if h.Addr == a {
				return true
			}
		}
		return false
	}
	if addr == "" {
		for a := Subnets[0].Addr().Next(); Subnets[0].Contains(a); a = a.Next() {
			if !used(a) && a.As4()[3] != 255 {
				return a, Subnets[0]
			}
		}
		l.t.Fatalf("lab: %s is full", Subnets[0])
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		l.t.Fatalf("lab: host address: %v", err)
	}
	for _, s := range Subnets {
		if s.Contains(a) && a != s.Addr() && a.As4()[3] != 255 {
			if used(a) {
				l.t.Fatalf("lab: address %s is taken", a)
			}
			return a, s
		}
	}
	l.t.Fatalf("lab: %s is not a host address in %v", a, Subnets)
	panic("unreachable")
}

// must runs ip with args or fails the test.
func (l *Lab) must(args ...string) {
	l.t.Helper()
	if err := ip(args...); err != nil {
		l.t.Fatalf("lab %s: %v", l.Name, err)
	}
}

func (l *Lab) teardown() {
	l.mu.Lock()
	hosts := l.hosts
	l.mu.Unlock()
	for _, h := range append(hosts, l.Bridge) {
		h.closeIdle()
		if err := deleteNamespace(h.NS); err != nil {
			l.t.Logf("lab %s: %v", l.Name, err)
		}
	}
}

// deleteNamespace kills every process still in namespace ns, then deletes it.
func deleteNamespace(ns string) error {
	if _, err := os.Stat(netnsDir + "/" + ns); os.IsNotExist(err) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	return ip("netns", "del", ns)
}

// reapStaleNamespaces deletes namespaces left by lab processes that no longer exist (a test
// binary killed by a timeout or a signal never runs its cleanups).
func reapStaleNamespaces(t T) {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || processExists(pid) {
			continue
		}
		if err := deleteNamespace(e.Name()); err == nil {
			t.Logf("lab: removed stale namespace %s (pid %d is gone)", e.Name(), pid)
		}
	}
}

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

func ip(args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

var (
	validName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)
	unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_]+`)
)

// shortName turns a test name into a short namespace-safe tag.
func shortName(name string) string {
	s := strings.Trim(unsafeChars.ReplaceAllString(name, "_"), "_")
	if len(s) > 24 {
		s = s[len(s)-24:]
	}
	if s == "" {
		s = "lab"
	}
	return s
}
