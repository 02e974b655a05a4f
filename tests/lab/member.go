package lab

import (
	"net/netip"
	"time"
)

// Member is a ZeroTier node in a lab that programs can use: a zerotier-one member with its
// kernel TAP device (ZT1), or a node that lives inside each program it wraps, such as
// ztnc-run (WrappedMember). Both keep their state in a Home and join the networks listed in
// its networks.d (or named by the wrapper).
type Member interface {
	// Address is the node's 10-hex-digit ZeroTier address, which a controller authorizes.
	Address() string
	// WaitNetwork waits until the node is on network nwid with an IPv4 address and returns
	// the endpoint where programs run on it; it fails t on timeout.
	WaitNetwork(t T, nwid string, timeout time.Duration) *Endpoint
}

// WrappedMember is a member whose node runs inside every program started under its wrapper,
// such as `ztnc-run --home H --nwid N -- program`. There is no process until a program runs,
// so the controller must know the member in advance: authorize Home's address with Addr as
// its assigned address (Controller.Authorize(ctx, nwid, addr, Addr)).
type WrappedMember struct {
	Host *Host
	Home *Home
	Addr netip.Addr // the member's IPv4 address on the network
	// Wrap returns argv wrapped to run as this member on network nwid.
	Wrap func(nwid string, argv []string) []string
	// Ready is a program whose success under Wrap means the network is OK; for a wrapper that
	// waits for the network before it starts the program (ztnc-run's default), "true".
	Ready []string
}

var _ Member = (*WrappedMember)(nil)

// Address is the address of the identity in Home.
func (m *WrappedMember) Address() string { return m.Home.Address() }

// WaitNetwork runs Ready under the wrapper, within timeout, and returns the member's endpoint.
func (m *WrappedMember) WaitNetwork(t T, nwid string, timeout time.Duration) *Endpoint {
	t.Helper()
	ep := &Endpoint{
		Name: m.Host.Name + "/" + nwid,
		Host: m.Host,
		Addr: m.Addr,
		Wrap: func(argv []string) []string { return m.Wrap(nwid, argv) },
	}
	if _, err := execArgvTimeout(t, ep.label(m.Ready[0]), ep.argv(m.Ready[0], m.Ready[1:]), timeout); err != nil {
		t.Fatalf("member %s on %s: not ready: %v", m.Address(), nwid, err)
	}
	return ep
}
