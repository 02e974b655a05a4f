package supervisor

import (
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ztnc/ztnc/netstack"
)

// Policy decides what happens to destinations outside the virtual networks: the host's
// network ("fall-through", the default) or nothing ("isolate"), with explicit holes.
//
// Destinations inside a joined network's routes always go to that network, and loopback
// destinations go first to the programs' own listeners (the stacks' loopback), as in a
// container; only what is left is the policy's business. Outages make both fail closed while
// a network is not up.
type Policy struct {
	// Isolate lets nothing reach the host's network, its loopback included, except the
	// destinations Allow names: connects and sends fail with ENETUNREACH, and the DNS
	// responder refuses names outside the virtual networks.
	Isolate bool
	// Allow are holes in Isolate.
	Allow []HostRule
	// Outages, when set, are the networks that are not up (see Outages); shared by every
	// supervisor given this policy.
	Outages *Outages
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

// NetworkStatus is what routing knows of a joined network.
type NetworkStatus uint8

const (
	// NetworkUp: destinations inside its routes go to its stack.
	NetworkUp NetworkStatus = iota
	// NetworkDown: the network had a config but cannot carry traffic now (its controller
	// refused us, or no longer has it). Its stack keeps the last routes, and destinations
	// inside them are unreachable (ENETUNREACH) unless another network that is up claims
	// them; the stack's own addresses stay reachable (local delivery).
	NetworkDown
	// NetworkUnconfigured: the network has no config yet, so nobody knows its routes. Until
	// it has one, every destination that no other network claims is unreachable, but for
	// loopback: the host's network is not taken, whatever the policy.
	NetworkUnconfigured
)

// Outages are the networks that are not up, by stack: what makes fall-through fail closed.
// Without them, a destination of a network whose routes are gone or not yet known would take
// the host's routes, in clear. One Outages serves every supervisor of an instance, and is
// safe for concurrent use; the zero value has every network up.
type Outages struct {
	mu   sync.Mutex
	down atomic.Pointer[map[*netstack.Stack]NetworkStatus] // read by route; nil when none
}

// Set records the status of st's network. A left network is up for this purpose: it has no
// routes, and its destinations take the host's routes again.
func (o *Outages) Set(st *netstack.Stack, s NetworkStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var m map[*netstack.Stack]NetworkStatus
	if old := o.down.Load(); old != nil {
		if (*old)[st] == s {
			return
		}
		m = maps.Clone(*old)
	} else if s == NetworkUp {
		return
	}
	if m == nil {
		m = map[*netstack.Stack]NetworkStatus{}
	}
	if s == NetworkUp {
		delete(m, st)
	} else {
		m[st] = s
	}
	if len(m) == 0 {
		o.down.Store(nil)
		return
	}
	o.down.Store(&m)
}

// Unconfigured reports whether a network has no config yet: until it has, nobody knows which
// names and addresses are its, so nothing may leave through the host (o may be nil).
func (o *Outages) Unconfigured() bool {
	for _, s := range o.snapshot() {
		if s == NetworkUnconfigured {
			return true
		}
	}
	return false
}

// snapshot returns the networks that are not up (nil when all are; o may be nil).
func (o *Outages) snapshot() map[*netstack.Stack]NetworkStatus {
	if o == nil {
		return nil
	}
	if m := o.down.Load(); m != nil {
		return *m
	}
	return nil
}
