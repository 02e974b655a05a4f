package main

import (
	"encoding/base32"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/notify"
	"github.com/ztnc/ztnc/supervisor"
	"github.com/ztnc/ztnc/supervisor/resolver"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// supervision is what the supervisor is given: the networks' stacks (the first one carries
// loopback and the DNS responder), their interface names, where the rest goes, the DNS
// redirects, and the loopback index of the instance (nil: the supervisor's own).
type supervision struct {
	stacks    []*netstack.Stack
	links     func() []supervisor.Link
	policy    supervisor.Policy
	redirects []supervisor.Redirect
	loopbacks *supervisor.Loopbacks
}

// start makes the supervisor of the programs behind l.
func (v *supervision) start(l *notify.Listener, log *slog.Logger) (*supervisor.Supervisor, error) {
	sup, err := supervisor.New(l, v.stacks[0], log)
	if err != nil {
		return nil, err
	}
	for _, st := range v.stacks[1:] {
		sup.AddNetwork(st)
	}
	sup.SetPolicy(v.policy)
	sup.SetLinks(v.links)
	sup.SetRedirects(v.redirects)
	if v.loopbacks != nil {
		sup.ShareLoopbacks(v.loopbacks)
	}
	return sup, nil
}

// upstreamResolvers are the host's resolvers the DNS responder forwards other names to: those
// of resolv.conf that the policy lets the programs reach (none under --isolate, unless a hole
// names them).
func upstreamResolvers(p supervisor.Policy) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range resolver.HostServers(resolvConf) {
		ap := netip.AddrPortFrom(a, 53)
		if p.HostAllowed(ap) {
			out = append(out, ap)
		}
	}
	return out
}

// linkName is the interface name zerotier-one gives a network on Linux: "zt" and the base32
// (a–z, 2–7) of the network ID folded to 40 bits. Programs under ztnc-run see the same name
// as on a host running zerotier-one.
func linkName(id ztaddr.NetworkID) string {
	v := uint64(id) ^ uint64(id)>>24
	b := []byte{byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	return "zt" + strings.ToLower(base32.StdEncoding.EncodeToString(b))
}
