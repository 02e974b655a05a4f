package supervisor

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Sizes of the socket addresses programs pass (struct sockaddr_in, struct sockaddr_in6 and the
// RFC 2133 sockaddr_in6 without sin6_scope_id, which Linux still accepts).
const (
	sizeofSockaddrIn      = 16
	sizeofSockaddrIn6     = 28
	sizeofSockaddrIn6Min  = 24
	maxSockaddrLen        = 128 // sizeof(struct sockaddr_storage)
	sockaddrFamilyOffset  = 0
	sockaddrPortOffset    = 2
	sockaddrIn4AddrOffset = 4
	sockaddrIn6AddrOffset = 8
	sockaddrIn6ScopeOff   = 24
)

// decodeSockaddr parses the address a program passed to bind or connect on a socket of family
// v6 (AF_INET6) or not, with Linux's errors. unspec reports an AF_UNSPEC address (connect's
// "dissolve the association", bind's "any" on AF_INET sockets).
func decodeSockaddr(b []byte, v6 bool) (ap netip.AddrPort, unspec bool, err error) {
	if len(b) < 2 {
		return netip.AddrPort{}, false, unix.EINVAL
	}
	family := binary.NativeEndian.Uint16(b[sockaddrFamilyOffset:])
	if family == unix.AF_UNSPEC {
		return netip.AddrPort{}, true, nil
	}
	if !v6 {
		if len(b) < sizeofSockaddrIn {
			return netip.AddrPort{}, false, unix.EINVAL
		}
		if family != unix.AF_INET {
			return netip.AddrPort{}, false, unix.EAFNOSUPPORT
		}
		port := binary.BigEndian.Uint16(b[sockaddrPortOffset:])
		addr := netip.AddrFrom4([4]byte(b[sockaddrIn4AddrOffset : sockaddrIn4AddrOffset+4]))
		return netip.AddrPortFrom(addr, port), false, nil
	}
	if len(b) < sizeofSockaddrIn6Min {
		return netip.AddrPort{}, false, unix.EINVAL
	}
	if family != unix.AF_INET6 {
		return netip.AddrPort{}, false, unix.EAFNOSUPPORT
	}
	port := binary.BigEndian.Uint16(b[sockaddrPortOffset:])
	addr := netip.AddrFrom16([16]byte(b[sockaddrIn6AddrOffset : sockaddrIn6AddrOffset+16]))
	if len(b) >= sizeofSockaddrIn6 && addr.Is6() && addr.IsLinkLocalUnicast() {
		if scope := binary.NativeEndian.Uint32(b[sockaddrIn6ScopeOff:]); scope != 0 {
			addr = addr.WithZone(itoa(scope))
		}
	}
	return netip.AddrPortFrom(addr, port), false, nil
}

// decodeBindAddr parses bind's address: as decodeSockaddr, and AF_UNSPEC is taken as AF_INET on
// an AF_INET socket when the address is "any", as Linux does.
func decodeBindAddr(b []byte, v6 bool) (netip.AddrPort, error) {
	ap, unspec, err := decodeSockaddr(b, v6)
	if err != nil {
		return ap, err
	}
	if a := ap.Addr(); a.Is6() && !a.Is4In6() && a.Zone() == "" && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		return netip.AddrPort{}, unix.EINVAL // Linux: binding to link-local needs an interface
	}
	if !unspec {
		return ap, nil
	}
	if v6 || len(b) < sizeofSockaddrIn {
		return netip.AddrPort{}, unix.EAFNOSUPPORT
	}
	b = append([]byte(nil), b...)
	binary.NativeEndian.PutUint16(b[sockaddrFamilyOffset:], unix.AF_INET)
	if ap, _, err = decodeSockaddr(b, false); err != nil {
		return netip.AddrPort{}, err
	}
	if !ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, unix.EAFNOSUPPORT
	}
	return ap, nil
}

// encodeSockaddr renders ap as the program's socket family sees it: sockaddr_in on AF_INET
// sockets, sockaddr_in6 (IPv4 peers v4-mapped) on AF_INET6 sockets.
func encodeSockaddr(ap netip.AddrPort, v6 bool) []byte {
	if !v6 {
		b := make([]byte, sizeofSockaddrIn)
		binary.NativeEndian.PutUint16(b[sockaddrFamilyOffset:], unix.AF_INET)
		binary.BigEndian.PutUint16(b[sockaddrPortOffset:], ap.Port())
		a := ap.Addr().Unmap()
		if a.Is4() {
			a4 := a.As4()
			copy(b[sockaddrIn4AddrOffset:], a4[:])
		}
		return b
	}
	b := make([]byte, sizeofSockaddrIn6)
	binary.NativeEndian.PutUint16(b[sockaddrFamilyOffset:], unix.AF_INET6)
	binary.BigEndian.PutUint16(b[sockaddrPortOffset:], ap.Port())
	a := ap.Addr()
	if a.IsValid() {
		a16 := a.As16() // IPv4 addresses come out v4-mapped
		copy(b[sockaddrIn6AddrOffset:], a16[:])
		if z := a.Zone(); z != "" {
			binary.NativeEndian.PutUint32(b[sockaddrIn6ScopeOff:], atoi(z))
		}
	}
	return b
}

func itoa(v uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

func atoi(s string) uint32 {
	var v uint32
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0
		}
		v = v*10 + uint32(c-'0')
	}
	return v
}
