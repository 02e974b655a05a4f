package supervisor

import (
	"net/netip"
)

// Policy decides what happens to destinations outside the virtual networks: the host's
// network ("fall-through", the default) or nothing ("isolate"), with explicit holes.
//
// Destinations inside a joined network's routes always go to that network, and loopback
// destinations go first to the programs' own listeners (the stacks' loopback), as in a
// container; only what is left is the policy's business.
type Policy struct {
	// Isolate lets nothing reach the host's network, its loopback included, except the
	// destinations Allow names: connects and sends fail with ENETUNREACH, and the DNS
	// responder refuses names outside the virtual networks.
	Isolate bool
	// Allow are holes in Isolate.
	Allow []HostRule
}

// HostRule is one hole in an isolated policy: destinations inside Prefix, on Port (0: any).
type HostRule struct {
	Prefix netip.Prefix
	Port   uint16
}

// HostAllowed reports whether the programs may reach ap on the host's network.
func (p *Policy) HostAllowed(ap netip.AddrPort) bool {
	if !p.Isolate {
		return true
	}
	a := ap.Addr().Unmap().WithZone("")
	for _, r := range p.Allow {
		if r.Prefix.Contains(a) && (r.Port == 0 || r.Port == ap.Port()) {
			return true
		}
	}
	return false
}
