package supervisor

import "net/netip"

// Redirect makes a destination outside the virtual network reach a service on the stack
// instead: programs that send to From (the host's resolver, 10.255.255.53:53) reach To (ztnc-run's
// DNS responder listening on the stack, e.g. 127.0.0.1:40053), and see From throughout — in
// getpeername, and as the source of what they receive. The address is rewritten when the
// program names it (connect, sendto, sendmsg) and back when the supervisor reports one, so
// the service needs no well-known port of its own on the stack (a program may bind port 53
// itself).
type Redirect struct {
	UDP      bool // UDP, else TCP
	From, To netip.AddrPort
}

type redirectKey struct {
	udp bool
	ap  netip.AddrPort
}

type redirectTable struct {
	out, in map[redirectKey]netip.AddrPort
}

// SetRedirects replaces the redirects (see Redirect). IPv4 addresses match the v4-mapped
// addresses of dual-stack sockets too.
func (s *Supervisor) SetRedirects(rs []Redirect) {
	t := &redirectTable{out: map[redirectKey]netip.AddrPort{}, in: map[redirectKey]netip.AddrPort{}}
	for _, r := range rs {
		from, to := unmapAddrPort(r.From), unmapAddrPort(r.To)
		t.out[redirectKey{r.UDP, from}] = to
		t.in[redirectKey{r.UDP, to}] = from
	}
	s.redirects.Store(t)
}

// redirectOut returns where a program's destination really goes, and whether it was
// redirected.
func (s *Supervisor) redirectOut(udp bool, ap netip.AddrPort) (netip.AddrPort, bool) {
	return s.redirectLookup(udp, ap, false)
}

// redirectIn returns the address a program sees for a peer or source.
func (s *Supervisor) redirectIn(udp bool, ap netip.AddrPort) netip.AddrPort {
	ap, _ = s.redirectLookup(udp, ap, true)
	return ap
}

func (s *Supervisor) redirectLookup(udp bool, ap netip.AddrPort, in bool) (netip.AddrPort, bool) {
	t := s.redirects.Load()
	if t == nil || !ap.IsValid() {
		return ap, false
	}
	m := t.out
	if in {
		m = t.in
	}
	r, ok := m[redirectKey{udp, unmapAddrPort(ap)}]
	if !ok {
		return ap, false
	}
	if ap.Addr().Is4In6() && r.Addr().Is4() {
		r = netip.AddrPortFrom(netip.AddrFrom16(r.Addr().As16()), r.Port())
	}
	return r, true
}

func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
