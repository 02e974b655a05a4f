package netstack

import (
	"net/netip"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// tcpipAddr converts an address for gVisor, keeping its length: 4 bytes for IPv4, 16 for IPv6
// (including v4-mapped addresses).
func tcpipAddr(a netip.Addr) tcpip.Address {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}

// netipAddr converts an address from gVisor. An empty address is the unspecified address of
// the family the endpoint has (v6 or not).
func netipAddr(a tcpip.Address, v6 bool) netip.Addr {
	switch a.Len() {
	case 4:
		if v6 {
			// A dual-stack socket talking IPv4 shows v4-mapped addresses, as on Linux.
			return netip.AddrFrom16(netip.AddrFrom4(a.As4()).As16())
		}
		return netip.AddrFrom4(a.As4())
	case 16:
		return netip.AddrFrom16(a.As16())
	}
	if v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// bindAddress converts a socket address given by the program to bind an endpoint of the given
// family, with Linux's errors: EAFNOSUPPORT for an IPv6 address on an IPv4 socket, EINVAL for
// a link-local IPv6 address without a scope (zone), or for a v4-mapped address on an
// IPV6_V6ONLY socket. The zone names no particular interface: a stack has one link.
func bindAddress(ep tcpip.Endpoint, ap netip.AddrPort, v6 bool) (tcpip.FullAddress, error) {
	if v6 && ap.Addr().Is4In6() && ep.SocketOptions().GetV6Only() {
		return tcpip.FullAddress{}, syscall.EINVAL
	}
	return socketAddress(ap, v6, true)
}

// destAddress is bindAddress for a destination (connect; sendto, which needs no scope): a
// v4-mapped address on an IPV6_V6ONLY socket is ENETUNREACH.
func destAddress(ep tcpip.Endpoint, ap netip.AddrPort, v6, needScope bool) (tcpip.FullAddress, error) {
	if v6 && ap.Addr().Is4In6() && ep.SocketOptions().GetV6Only() {
		return tcpip.FullAddress{}, syscall.ENETUNREACH
	}
	return socketAddress(ap, v6, needScope)
}

func socketAddress(ap netip.AddrPort, v6, needScope bool) (tcpip.FullAddress, error) {
	a := ap.Addr()
	fa := tcpip.FullAddress{Port: ap.Port()}
	switch {
	case !a.IsValid():
		return fa, nil
	case !v6:
		if !a.Is4() {
			return fa, syscall.EAFNOSUPPORT
		}
	case a.Is4():
		// An IPv4 address on a dual-stack socket travels as a v4-mapped address.
		a = netip.AddrFrom16(a.As16())
	}
	if a.Is6() && !a.Is4In6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		if a.Zone() == "" && needScope {
			return fa, syscall.EINVAL
		}
		fa.NIC = linkNICID
	}
	if !a.IsUnspecified() {
		fa.Addr = tcpipAddr(a.WithZone(""))
	}
	return fa, nil
}

// addrPort converts a gVisor socket address to what the program sees for an endpoint of the
// given family.
func addrPort(fa tcpip.FullAddress, v6 bool) netip.AddrPort {
	a := netipAddr(fa.Addr, v6)
	if a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		a = a.WithZone(linkZone)
	}
	return netip.AddrPortFrom(a, fa.Port)
}

// localAddr is ep's bound address as the program sees it (unspecified, port 0 when unbound).
func localAddr(ep tcpip.Endpoint, v6 bool) netip.AddrPort {
	fa, err := ep.GetLocalAddress()
	if err != nil {
		return addrPort(tcpip.FullAddress{}, v6)
	}
	return addrPort(fa, v6)
}

// remoteAddr is ep's peer as the program sees it, or ENOTCONN.
func remoteAddr(ep tcpip.Endpoint, v6 bool) (netip.AddrPort, error) {
	fa, err := ep.GetRemoteAddress()
	if err != nil {
		return netip.AddrPort{}, errno(err)
	}
	return addrPort(fa, v6), nil
}
