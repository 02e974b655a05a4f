package supervisor

import (
	"net/netip"
	"sync"

	"github.com/ztnc/ztnc/netstack"
)

// Where a destination goes (see route).
type routeKind uint8

const (
	toStack     routeKind = iota // a virtual network's stack
	toHost                       // the host's network (fall-through, or a hole in isolation)
	unreachable                  // nowhere: ENETUNREACH
)

// route decides where a program's connect or send to ap goes.
//
//   - Loopback addresses reach the programs' own listeners first (the first stack's loopback
//     NIC, where every loopback and wildcard listener lives), as in a container; without such
//     a listener they go to the host's loopback when the policy allows it.
//   - An address inside a joined network's addresses or routes (and link-local, multicast and
//     broadcast addresses) goes to that network's stack: the first that claims it among the
//     networks that are up. If only networks that are down claim it, it is unreachable, but
//     for their own addresses (see NetworkDown).
//   - While a network has no config (NetworkUnconfigured), everything else is unreachable.
//   - Everything else goes to the host's network if the policy allows it.
//
// The decision is made once per connect (and per datagram for unconnected sends), so it
// follows configuration changes, outages and listeners coming and going.
func (s *Supervisor) route(udp bool, ap netip.AddrPort) (routeKind, *netstack.Stack) {
	a := ap.Addr().Unmap()
	if a.IsLoopback() {
		if s.loopbacks.has(udp, netip.AddrPortFrom(a, ap.Port())) {
			return toStack, s.stack
		}
		if s.policy.HostAllowed(ap) {
			return toHost, nil
		}
		return unreachable, nil
	}
	if a.IsUnspecified() {
		// Linux connects "any" to the local host: the programs' own listeners.
		return toStack, s.stack
	}
	outages := s.policy.Outages.snapshot()
	claimedByDown := false
	for _, st := range s.stacks {
		if !st.Routable(a) {
			continue
		}
		switch outages[st] {
		case NetworkUp:
			return toStack, st
		case NetworkDown:
			if ownAddress(st, a) {
				return toStack, st
			}
			claimedByDown = true
		}
	}
	if claimedByDown {
		return unreachable, nil
	}
	for _, st := range s.stacks {
		if outages[st] == NetworkUnconfigured {
			return unreachable, nil
		}
	}
	if s.policy.HostAllowed(ap) {
		return toHost, nil
	}
	return unreachable, nil
}

// ownAddress reports whether a is one of st's addresses.
func ownAddress(st *netstack.Stack, a netip.Addr) bool {
	a = a.WithZone("")
	for _, p := range st.Addresses() {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// stackOf returns the stack that owns local address a (bind to a specific address), or nil.
// Loopback and unspecified addresses belong to the first stack.
func (s *Supervisor) stackOf(a netip.Addr) *netstack.Stack {
	a = a.Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() {
		return s.stack
	}
	for _, st := range s.stacks {
		for _, p := range st.Addresses() {
			if p.Addr() == a.WithZone("") {
				return st
			}
		}
		if a.Is6() && a.IsLinkLocalUnicast() && st.LinkLocal().WithZone("") == a.WithZone("") {
			return st
		}
	}
	return nil
}

// loopbackPorts indexes the programs' sockets that a loopback destination reaches: TCP
// listeners and bound UDP sockets on a loopback or wildcard address. It is what makes
// 127.0.0.1:PORT reach a sibling process's listener rather than the host's.
type loopbackPorts struct {
	mu sync.Mutex
	m  map[loopbackKey]map[netip.Addr]int // by port: bound addresses and how many sockets
}

type loopbackKey struct {
	udp  bool
	port uint16
}

// add records a socket bound to ap (an address other than loopback or wildcard is not
// indexed). It returns whether it was indexed, to be given back to remove.
func (l *loopbackPorts) add(udp bool, ap netip.AddrPort) bool {
	a := ap.Addr().Unmap().WithZone("")
	if ap.Port() == 0 || !(a.IsLoopback() || a.IsUnspecified()) {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[loopbackKey]map[netip.Addr]int{}
	}
	k := loopbackKey{udp, ap.Port()}
	if l.m[k] == nil {
		l.m[k] = map[netip.Addr]int{}
	}
	l.m[k][a]++
	return true
}

func (l *loopbackPorts) remove(udp bool, ap netip.AddrPort) {
	a := ap.Addr().Unmap().WithZone("")
	l.mu.Lock()
	defer l.mu.Unlock()
	k := loopbackKey{udp, ap.Port()}
	if l.m[k] == nil {
		return
	}
	if l.m[k][a]--; l.m[k][a] <= 0 {
		delete(l.m[k], a)
	}
	if len(l.m[k]) == 0 {
		delete(l.m, k)
	}
}

// has reports whether a program's socket receives what is sent to the loopback address ap:
// one bound to that address, or to the wildcard of its family (IPv6's takes IPv4 too).
func (l *loopbackPorts) has(udp bool, ap netip.AddrPort) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	addrs := l.m[loopbackKey{udp, ap.Port()}]
	if len(addrs) == 0 {
		return false
	}
	a := ap.Addr()
	if addrs[a] > 0 || addrs[netip.IPv6Unspecified()] > 0 {
		return true
	}
	return a.Is4() && addrs[netip.IPv4Unspecified()] > 0
}
