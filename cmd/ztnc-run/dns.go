package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/supervisor"
	"github.com/ztnc/ztnc/supervisor/resolver"
	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// localDomain is the DNS domain of --local networks: ".internal" is reserved for private use
// (ICANN, 2024), so it never shadows a public name.
const localDomain = "internal"

// resolvConf is where the programs' resolvers find their servers.
const resolvConf = "/etc/resolv.conf"

// localNames is the resolver's view of a --local network: this member's name (--dns-name) and
// the names given with --add-host, under localDomain.
type localNames struct {
	st    *netstack.Stack
	self  string
	hosts map[string][]netip.Addr
}

// newLocalNames parses --dns-name and --add-host NAME=ADDR values.
func newLocalNames(st *netstack.Stack, self string, adds []string) (*localNames, error) {
	n := &localNames{st: st, self: qualify(self), hosts: map[string][]netip.Addr{}}
	for _, v := range adds {
		name, addr, ok := strings.Cut(v, "=")
		a, err := netip.ParseAddr(strings.TrimSpace(addr))
		if !ok || err != nil || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("--add-host %q: want NAME=ADDRESS", v)
		}
		q := qualify(name)
		n.hosts[q] = append(n.hosts[q], a)
	}
	return n, nil
}

// qualify puts a name in localDomain unless it already has a dot.
func qualify(name string) string {
	name = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
	if name == "" || strings.Contains(name, ".") {
		return name
	}
	return name + "." + localDomain
}

func (n *localNames) DNS() (string, []netip.Addr) { return localDomain, nil }

func (n *localNames) Lookup(name string) ([]netip.Addr, bool) {
	if name == n.self && n.self != "" {
		var out []netip.Addr
		for _, p := range n.st.Addresses() {
			out = append(out, p.Addr())
		}
		return out, true
	}
	a, ok := n.hosts[name]
	return a, ok
}

// Names gives this member's name for its own addresses, and the --add-host names of an
// address (those may lie outside the network, like /etc/hosts entries). Other addresses of the
// network have none.
func (n *localNames) Names(addr netip.Addr) ([]string, bool) {
	own := n.st.Addresses()
	onNet := slices.ContainsFunc(own, func(p netip.Prefix) bool { return p.Contains(addr) })
	var out []string
	if n.self != "" && slices.ContainsFunc(own, func(p netip.Prefix) bool { return p.Addr() == addr }) {
		out = append(out, n.self)
	}
	var hosts []string
	for name, addrs := range n.hosts {
		if slices.Contains(addrs, addr) {
			hosts = append(hosts, name)
		}
	}
	slices.Sort(hosts)
	out = append(out, hosts...)
	return out, onNet || len(out) > 0
}

func (n *localNames) Exchange(ctx context.Context, server netip.AddrPort, msg []byte, tcp bool) ([]byte, error) {
	return resolver.StackExchange(n.st)(ctx, server, msg, tcp)
}

// errNoConfigYet: a query for the host's resolvers while a network has no config.
var errNoConfigYet = errors.New("a network has no config yet")

// defaultDNSName is this member's name on a --local network: the host's short name.
func defaultDNSName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	h, _, _ = strings.Cut(h, ".")
	return h
}

// startResolver serves the DNS responder on the stack and returns the redirects that send the
// programs' queries to the host's resolvers there. Names outside the virtual networks go to
// upstream, the host's resolvers the policy lets the programs reach; with none they are
// refused. While a network has no config yet (outages), they fail (SERVFAIL, so clients ask
// again): the name may be one of that network's, and its query is not the host's business.
func startResolver(log *slog.Logger, st *netstack.Stack, nets func() []resolver.Network, upstream []netip.AddrPort, outages *supervisor.Outages) (*resolver.Server, []supervisor.Redirect, error) {
	r := resolver.New(resolver.Config{
		Networks: nets,
		Upstream: upstream,
		Exchange: func(ctx context.Context, server netip.AddrPort, msg []byte, tcp bool) ([]byte, error) {
			if outages.Unconfigured() {
				return nil, errNoConfigYet
			}
			return resolver.HostExchange(ctx, server, msg, tcp)
		},
	})
	srv, addrs, err := resolver.Listen(r, st, log)
	if err != nil {
		return nil, nil, err
	}
	var rs []supervisor.Redirect
	for _, a := range resolver.HostServers(resolvConf) {
		from := netip.AddrPortFrom(a, 53)
		udp, tcp := addrs.UDP4, addrs.TCP4
		if a.Is6() && !a.Is4In6() {
			udp, tcp = addrs.UDP6, addrs.TCP6
		}
		rs = append(rs, supervisor.Redirect{UDP: true, From: from, To: udp}, supervisor.Redirect{From: from, To: tcp})
	}
	log.Debug("dns responder", "udp", addrs.UDP4, "tcp", addrs.TCP4, "answers for", rs)
	return srv, rs, nil
}

// ztNames is the resolver's view of a ZeroTier network: the built-in member names
// <node>.<nwid>.zt, and the DNS domain and servers of the network's config.
//
// A member's name gives its RFC 4193 and 6PLANE addresses when the network assigns those (they
// are computed from the node address), and its IPv4 addresses as the stack's neighbour table
// knows them (a member's MAC is computed from its node address; its IPv4 address is the
// controller's choice, learned by ARP once the two members have talked). ZeroTier 1.x network
// configs carry no member names.
type ztNames struct {
	nw   *zt.Network
	self ztaddr.Address
	st   *netstack.Stack
}

func (n *ztNames) DNS() (string, []netip.Addr) {
	s := n.nw.State()
	return s.DNS.Domain, s.DNS.Servers
}

func (n *ztNames) Lookup(name string) ([]netip.Addr, bool) {
	node, rest, _ := strings.Cut(name, ".")
	if rest != n.nw.ID().String()+".zt" {
		return nil, false
	}
	a, err := ztaddr.ParseAddress(node)
	if err != nil {
		return nil, false
	}
	own := n.st.Addresses()
	if a == n.self {
		out := make([]netip.Addr, 0, len(own))
		for _, p := range own {
			out = append(out, p.Addr())
		}
		return out, true
	}
	var out []netip.Addr
	id := n.nw.ID()
	for _, p := range own {
		switch p.Addr() {
		case ztaddr.RFC4193(id, n.self).Addr():
			out = append(out, ztaddr.RFC4193(id, a).Addr())
		case ztaddr.SixPlane(id, n.self).Addr():
			out = append(out, ztaddr.SixPlane(id, a).Addr())
		}
	}
	mac := ztaddr.NodeMAC(a, id)
	for ip, m := range n.st.Neighbors() {
		if m == [6]byte(mac) && ip.Is4() {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, true
}

// Names gives the built-in name of the member an address of the network belongs to: this
// member's for its own addresses, and the member whose RFC 4193 or 6PLANE address it is, or
// whose MAC the stack's neighbour table gives for it (IPv4, once the two have talked).
func (n *ztNames) Names(addr netip.Addr) ([]string, bool) {
	own := n.st.Addresses()
	if !slices.ContainsFunc(own, func(p netip.Prefix) bool { return p.Contains(addr) }) {
		return nil, false
	}
	id := n.nw.ID()
	name := func(a ztaddr.Address) []string { return []string{a.String() + "." + id.String() + ".zt"} }
	if slices.ContainsFunc(own, func(p netip.Prefix) bool { return p.Addr() == addr }) {
		return name(n.self), true
	}
	if addr.Is6() {
		b := addr.As16()
		for _, cand := range []struct {
			node ztaddr.Address
			of   func(ztaddr.NetworkID, ztaddr.Address) netip.Prefix
		}{{ztaddr.AddressFrom(b[11:16]), ztaddr.RFC4193}, {ztaddr.AddressFrom(b[5:10]), ztaddr.SixPlane}} {
			if !cand.node.IsReserved() && cand.of(id, cand.node).Addr() == addr {
				return name(cand.node), true
			}
		}
	}
	if mac, ok := n.st.Neighbors()[addr]; ok {
		if a, ok := ztaddr.MAC(mac).NodeAddress(id); ok {
			return name(a), true
		}
	}
	return nil, true
}

func (n *ztNames) Exchange(ctx context.Context, server netip.AddrPort, msg []byte, tcp bool) ([]byte, error) {
	return resolver.StackExchange(n.st)(ctx, server, msg, tcp)
}
