package netstack

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// NIC numbers follow Linux's interface indexes: lo is 1, the first real interface 2.
const (
	loopbackNICID tcpip.NICID = 1
	linkNICID     tcpip.NICID = 2

	// LinkIndex is the interface index of the stack's Ethernet link, the scope id of its
	// link-local addresses. Link-local addresses this package returns carry it as their
	// zone ("2"); it accepts any non-empty zone on link-local addresses (there is one link).
	LinkIndex = int(linkNICID)
	linkZone  = "2"
)

// Config holds the settings of a Stack. The zero value is the tuned default.
type Config struct {
	// CongestionControl is the TCP congestion control algorithm, "reno" or "cubic"; empty
	// selects the default (see tune.go for why).
	CongestionControl string
}

// Route sends traffic for Dst through the router Via; an invalid (zero) Via means Dst is on
// the link.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Stack is the user-space TCP/IP stack of one virtual network: an Ethernet NIC on a Port and
// a loopback NIC (127.0.0.1/8, ::1) so that programs under one ztnc-run reach each other's
// loopback listeners through it. Its methods are safe for concurrent use.
type Stack struct {
	st    *stack.Stack
	port  Port
	link  *link
	stats counters

	// mu guards the configuration below and the port's subscriptions.
	mu        sync.Mutex
	addrs     []netip.Prefix
	linkLocal netip.Addr
	routes    []Route
	joined    map[netip.Addr]int          // multicast groups joined by sockets
	subs      map[multicastGroup]struct{} // what the port is subscribed to
	closed    bool
	routable  atomic.Pointer[[]netip.Prefix] // snapshot for Routable

	// running holds the proxies that run (guarded by mu), splices counts them, so that
	// Close can stop them all and return only when they have.
	running map[proxy]struct{}
	splices sync.WaitGroup
	parker  parker

	timeWait *timeWaitGovernor
}

// isBroadcast reports whether a is the limited broadcast address or the broadcast address of
// one of the stack's IPv4 subnets.
func (s *Stack) isBroadcast(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.addrs {
		if p.Addr().Is4() && p.Bits() < 31 && p.Contains(a) {
			b := p.Masked().Addr().As4()
			hostBits := uint32(1)<<(32-p.Bits()) - 1
			v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | hostBits
			if a == netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}) {
				return true
			}
		}
	}
	return false
}

// proxy is a running proxy: the stack's sweeps ask its idle loops to park, and Close stops it.
type proxy interface {
	sweep()
	parked() uint64 // its loops parked now
	shutdown()
}

// startSplice registers a proxy about to start; false when the stack is closed.
func (s *Stack) startSplice(p proxy) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.running[p] = struct{}{}
	s.splices.Add(1)
	s.parker.splicing()
	return true
}

// runningLocked returns the running proxies, to be called on without s.mu; s.mu is held.
func (s *Stack) runningLocked() []proxy {
	ps := make([]proxy, 0, len(s.running))
	for p := range s.running {
		ps = append(ps, p)
	}
	return ps
}

// spliceDone unregisters a proxy that has finished.
func (s *Stack) spliceDone(p proxy) {
	s.mu.Lock()
	delete(s.running, p)
	s.mu.Unlock()
	s.splices.Done()
}

// New creates a stack attached to port. The Ethernet NIC takes the port's MAC and MTU and an
// IPv6 link-local address derived from the MAC (as Linux does on a new interface); it has no
// other address until SetAddresses.
func New(port Port, cfg Config) (*Stack, error) {
	st := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		// Packets to our own addresses stay inside the stack (as on Linux) rather than going
		// out on the link.
		HandleLocal: true,
	})
	s := &Stack{
		st:      st,
		port:    port,
		joined:  map[netip.Addr]int{},
		subs:    map[multicastGroup]struct{}{},
		running: map[proxy]struct{}{},
	}
	s.parker.s = s
	fail := func(err error) (*Stack, error) {
		if s.link != nil {
			s.link.close()
		}
		st.Destroy()
		return nil, err
	}
	if err := tune(st, cfg); err != nil {
		return fail(err)
	}
	if mtu := port.MTU(); mtu < header.IPv4MinimumMTU || mtu > 65535 {
		return fail(fmt.Errorf("netstack: port MTU %d out of range", mtu))
	}
	s.timeWait = newTimeWaitGovernor(st)
	s.link = newLink(port, &s.stats)
	if err := st.CreateNICWithOptions(linkNICID, s.link, stack.NICOptions{Name: "zt0", QDisc: s.link}); err != nil {
		return fail(fmt.Errorf("netstack: create NIC: %s", err))
	}
	lo := &loopbackLink{LinkEndpoint: loopback.New()}
	if err := st.CreateNICWithOptions(loopbackNICID, lo, stack.NICOptions{Name: "lo"}); err != nil {
		return fail(fmt.Errorf("netstack: create loopback NIC: %s", err))
	}
	lo.created.Store(true)
	for _, p := range []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")} {
		if err := s.addAddress(loopbackNICID, p); err != nil {
			return fail(err)
		}
	}
	mac := port.MAC()
	s.linkLocal = netip.AddrFrom16(header.LinkLocalAddr(tcpip.LinkAddress(mac[:])).As16())
	if err := s.addAddress(linkNICID, netip.PrefixFrom(s.linkLocal, 64)); err != nil {
		return fail(err)
	}
	s.mu.Lock()
	s.reconfigureLocked()
	s.mu.Unlock()
	return s, nil
}

func (s *Stack) addAddress(nic tcpip.NICID, p netip.Prefix) error {
	proto := ipv4.ProtocolNumber
	if p.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	err := s.st.AddProtocolAddress(nic, tcpip.ProtocolAddress{
		Protocol:          proto,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpipAddr(p.Addr()), PrefixLen: p.Bits()},
	}, stack.AddressProperties{})
	if err != nil {
		return fmt.Errorf("netstack: add address %s: %s", p, err)
	}
	return nil
}

// loopbackLink is gVisor's loopback link, hiding CapabilityLoopback while its NIC is
// created. gVisor then does not take it for "the stack's loopback NIC", through which it
// routes all traffic to the stack's own addresses and from which it answers that traffic
// (ICMP echo replies, port unreachable) with the link's address as source, which it cannot
// route: pinging your own address would get no reply. Traffic to own addresses loops in
// the network layer of their NIC instead (HandleLocal). After creation the NIC is a
// loopback NIC in every other respect: all of 127.0.0.0/8 is local, packets loop at the
// link, loopback addresses are accepted only here. TestPing and TestTCPConnectAccept check
// both sides.
type loopbackLink struct {
	stack.LinkEndpoint
	created atomic.Bool
}

func (l *loopbackLink) Capabilities() stack.LinkEndpointCapabilities {
	c := l.LinkEndpoint.Capabilities()
	if !l.created.Load() {
		c &^= stack.CapabilityLoopback
	}
	return c
}

// SetAddresses replaces the addresses of the Ethernet NIC (the link-local address stays). It
// adds an on-link route for each prefix and subscribes the port to the groups that carry
// address resolution for each address: the broadcast MAC with the IPv4 address as ADI, and
// the IPv6 solicited-node group.
func (s *Stack) SetAddresses(prefixes []netip.Prefix) error {
	want := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		a := p.Addr().Unmap()
		bits := p.Bits()
		if p.Addr().Is4In6() && bits >= 96 {
			bits -= 96
		}
		if !p.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.Zone() != "" {
			return fmt.Errorf("netstack: cannot assign address %s", p)
		}
		q := netip.PrefixFrom(a, bits)
		if !slices.Contains(want, q) {
			want = append(want, q)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("netstack: stack closed")
	}
	for _, p := range s.addrs {
		if !slices.Contains(want, p) {
			if err := s.st.RemoveAddress(linkNICID, tcpipAddr(p.Addr())); err != nil {
				return fmt.Errorf("netstack: remove address %s: %s", p, err)
			}
		}
	}
	kept := s.addrs[:0]
	for _, p := range s.addrs {
		if slices.Contains(want, p) {
			kept = append(kept, p)
		}
	}
	s.addrs = kept
	for _, p := range want {
		if slices.Contains(s.addrs, p) {
			continue
		}
		if err := s.addAddress(linkNICID, p); err != nil {
			s.reconfigureLocked()
			return err
		}
		s.addrs = append(s.addrs, p)
	}
	s.reconfigureLocked()
	return nil
}

// Addresses returns the addresses set by SetAddresses.
func (s *Stack) Addresses() []netip.Prefix {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs)
}

// LinkLocal returns the IPv6 link-local address of the Ethernet NIC (zone LinkIndex).
func (s *Stack) LinkLocal() netip.Addr { return s.linkLocal.WithZone(linkZone) }

// MAC returns the MAC of the Ethernet NIC.
func (s *Stack) MAC() [6]byte { return s.link.mac }

// SetRoutes replaces the routes beyond the on-link prefixes of the addresses.
func (s *Stack) SetRoutes(routes []Route) error {
	for _, r := range routes {
		if !r.Dst.IsValid() || (r.Via.IsValid() && r.Via.Unmap().Is4() != r.Dst.Addr().Unmap().Is4()) {
			return fmt.Errorf("netstack: bad route %s via %s", r.Dst, r.Via)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes = slices.Clone(routes)
	s.reconfigureLocked()
	return nil
}

// SetMTU changes the MTU of the Ethernet NIC (the largest IP packet).
func (s *Stack) SetMTU(mtu int) error {
	if mtu < header.IPv4MinimumMTU || mtu > 65535 {
		return fmt.Errorf("netstack: MTU %d out of range", mtu)
	}
	if err := s.st.SetNICMTU(linkNICID, uint32(mtu)); err != nil {
		return fmt.Errorf("netstack: set MTU: %s", err)
	}
	return nil
}

// Routable reports whether the stack handles traffic to dst: dst is one of its addresses,
// inside a route, loopback, or multicast. The supervisor uses it to decide whether a
// destination is virtual. It takes no lock.
func (s *Stack) Routable(dst netip.Addr) bool {
	dst = dst.Unmap().WithZone("")
	for _, p := range *s.routable.Load() {
		if p.Contains(dst) {
			return true
		}
	}
	return false
}

// reconfigureLocked derives the route table, the multicast filter and the port's
// subscriptions from the addresses, routes and joined groups.
func (s *Stack) reconfigureLocked() {
	var table []tcpip.Route
	var prefixes []netip.Prefix
	add := func(dst netip.Prefix, via netip.Addr, nic tcpip.NICID) {
		dst = dst.Masked()
		r := tcpip.Route{Destination: subnet(dst), NIC: nic}
		if via.IsValid() {
			r.Gateway = tcpipAddr(via.Unmap())
		}
		table = append(table, r)
		prefixes = append(prefixes, dst)
	}
	add(netip.MustParsePrefix("127.0.0.0/8"), netip.Addr{}, loopbackNICID)
	add(netip.MustParsePrefix("::1/128"), netip.Addr{}, loopbackNICID)
	add(netip.MustParsePrefix("fe80::/64"), netip.Addr{}, linkNICID)
	add(netip.MustParsePrefix("224.0.0.0/4"), netip.Addr{}, linkNICID)
	add(netip.MustParsePrefix("ff00::/8"), netip.Addr{}, linkNICID)
	add(netip.MustParsePrefix("255.255.255.255/32"), netip.Addr{}, linkNICID)
	for _, p := range s.addrs {
		add(p, netip.Addr{}, linkNICID)
		prefixes = append(prefixes, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	for _, r := range s.routes {
		dst := netip.PrefixFrom(r.Dst.Addr().Unmap(), r.Dst.Bits())
		if r.Dst.Addr().Is4In6() && r.Dst.Bits() >= 96 {
			dst = netip.PrefixFrom(dst.Addr(), r.Dst.Bits()-96)
		}
		add(dst, r.Via, linkNICID)
	}
	s.st.SetRouteTable(table)
	s.routable.Store(&prefixes)

	want := map[multicastGroup]struct{}{}
	filter := map[[6]byte]struct{}{}
	addGroup := func(mac [6]byte, adi uint32) {
		want[multicastGroup{mac, adi}] = struct{}{}
		if mac != broadcastMAC {
			filter[mac] = struct{}{}
		}
	}
	// All-nodes (ff02::1) carries router and neighbour advertisements to everyone.
	addGroup(multicastMAC(netip.MustParseAddr("ff02::1")), 0)
	addGroup(solicitedNodeMAC(s.linkLocal), 0)
	for _, p := range s.addrs {
		if a := p.Addr(); a.Is4() {
			b := a.As4()
			addGroup(broadcastMAC, uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]))
		} else {
			addGroup(solicitedNodeMAC(a), 0)
		}
	}
	for g := range s.joined {
		addGroup(multicastMAC(g), 0)
	}
	s.link.setGroups(filter)
	for g := range s.subs {
		if _, ok := want[g]; !ok {
			s.port.Unsubscribe(g.mac, g.adi)
			delete(s.subs, g)
		}
	}
	for g := range want {
		if _, ok := s.subs[g]; !ok {
			s.port.Subscribe(g.mac, g.adi)
			s.subs[g] = struct{}{}
		}
	}
}

// joinGroup subscribes the port to a multicast group a socket joined (counted: the last
// leaveGroup unsubscribes).
func (s *Stack) joinGroup(g netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.joined[g]++
	if s.joined[g] == 1 && !s.closed {
		s.reconfigureLocked()
	}
}

func (s *Stack) leaveGroup(g netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.joined[g] == 0 {
		return
	}
	s.joined[g]--
	if s.joined[g] == 0 {
		delete(s.joined, g)
		if !s.closed {
			s.reconfigureLocked()
		}
	}
}

func subnet(p netip.Prefix) tcpip.Subnet {
	a := tcpipAddr(p.Addr())
	return tcpip.AddressWithPrefix{Address: a, PrefixLen: p.Bits()}.Subnet()
}

// multicastMAC is the Ethernet group of an IP multicast address (RFC 1112, RFC 2464).
func multicastMAC(a netip.Addr) [6]byte {
	if a.Is4() {
		b := a.As4()
		return [6]byte{0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]}
	}
	b := a.As16()
	return [6]byte{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// solicitedNodeMAC is the Ethernet group of an IPv6 address's solicited-node multicast
// address (ff02::1:ffXX:XXXX), which carries neighbour solicitations for it.
func solicitedNodeMAC(a netip.Addr) [6]byte {
	b := a.As16()
	return [6]byte{0x33, 0x33, 0xff, b[13], b[14], b[15]}
}

// Close shuts the stack down: every endpoint is aborted (peers get RSTs), running proxies
// stop and release their files, and the port is detached.
func (s *Stack) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for g := range s.subs {
		s.port.Unsubscribe(g.mac, g.adi)
	}
	s.subs = map[multicastGroup]struct{}{}
	running := s.runningLocked()
	s.mu.Unlock()
	for _, p := range running {
		p.shutdown()
	}
	s.st.Close()
	s.splices.Wait()
	s.parker.close()
	s.link.close()
	s.st.Wait()
}

// Neighbors returns what the link's neighbour tables (ARP, NDP) know: IP address → MAC, for
// entries with a MAC (reachable, stale, delayed or probing). The supervisor's DNS responder
// names other members by it.
func (s *Stack) Neighbors() map[netip.Addr][6]byte {
	out := map[netip.Addr][6]byte{}
	for _, proto := range []tcpip.NetworkProtocolNumber{ipv4.ProtocolNumber, ipv6.ProtocolNumber} {
		entries, err := s.st.Neighbors(linkNICID, proto)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if len(e.LinkAddr) != 6 {
				continue
			}
			out[netipAddr(e.Addr, false)] = [6]byte([]byte(e.LinkAddr))
		}
	}
	return out
}
