package ztaddr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// InetAddress is ZeroTier's serialized physical endpoint: type 0 (none), 4 (IPv4 + port) or 6
// (IPv6 + port). In network configurations the port field carries a prefix length instead (see
// Prefix). Types 1..3 are reserved for other media; receivers skip them, and they are kept here
// verbatim so that they re-encode unchanged.
type InetAddress struct {
	AddrPort netip.AddrPort // invalid for the nil address and for reserved types
	Opaque   []byte         // the whole encoding of a reserved type, else nil
}

// ErrBadInetAddress is returned for encodings that cannot be parsed.
var ErrBadInetAddress = errors.New("bad InetAddress")

// InetAddressOf wraps an IP endpoint.
func InetAddressOf(ap netip.AddrPort) InetAddress { return InetAddress{AddrPort: ap} }

// InetAddressOfPrefix encodes a prefix the way network configurations do (bits in the port).
func InetAddressOfPrefix(p netip.Prefix) InetAddress {
	return InetAddress{AddrPort: netip.AddrPortFrom(p.Addr(), uint16(p.Bits()))}
}

// IsNil reports whether this is the nil address (type 0).
func (a InetAddress) IsNil() bool { return !a.AddrPort.IsValid() && a.Opaque == nil }

// Prefix interprets the port field as a prefix length. ok is false if that is impossible.
func (a InetAddress) Prefix() (p netip.Prefix, ok bool) {
	if !a.AddrPort.IsValid() || int(a.AddrPort.Port()) > a.AddrPort.Addr().BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a.AddrPort.Addr(), int(a.AddrPort.Port())), true
}

// Len is the size of the encoding.
func (a InetAddress) Len() int {
	switch {
	case a.Opaque != nil:
		return len(a.Opaque)
	case !a.AddrPort.IsValid():
		return 1
	case a.AddrPort.Addr().Is4():
		return 7
	default:
		return 19
	}
}

// Append appends the encoding to b.
func (a InetAddress) Append(b []byte) []byte {
	switch {
	case a.Opaque != nil:
		return append(b, a.Opaque...)
	case !a.AddrPort.IsValid():
		return append(b, 0)
	case a.AddrPort.Addr().Is4():
		ip := a.AddrPort.Addr().As4()
		b = append(b, 4)
		b = append(b, ip[:]...)
	default:
		ip := a.AddrPort.Addr().As16()
		b = append(b, 6)
		b = append(b, ip[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.AddrPort.Port())
}

// ParseInetAddress reads an InetAddress at the start of b and returns it with its length.
func ParseInetAddress(b []byte) (InetAddress, int, error) {
	if len(b) == 0 {
		return InetAddress{}, 0, fmt.Errorf("%w: empty", ErrBadInetAddress)
	}
	n := 0
	switch b[0] {
	case 0:
		return InetAddress{}, 1, nil
	case 1, 2:
		n = 7
	case 3:
		if len(b) < 3 {
			return InetAddress{}, 0, fmt.Errorf("%w: truncated", ErrBadInetAddress)
		}
		n = 3 + int(binary.BigEndian.Uint16(b[1:]))
	case 4:
		n = 7
	case 6:
		n = 19
	default:
		return InetAddress{}, 0, fmt.Errorf("%w: type %#02x", ErrBadInetAddress, b[0])
	}
	if len(b) < n {
		return InetAddress{}, 0, fmt.Errorf("%w: truncated type %d", ErrBadInetAddress, b[0])
	}
	switch b[0] {
	case 4:
		return InetAddress{AddrPort: netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[1:5])), binary.BigEndian.Uint16(b[5:]))}, n, nil
	case 6:
		return InetAddress{AddrPort: netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[1:17])), binary.BigEndian.Uint16(b[17:]))}, n, nil
	}
	return InetAddress{Opaque: append([]byte(nil), b[:n]...)}, n, nil
}

func (a InetAddress) String() string {
	switch {
	case a.Opaque != nil:
		return fmt.Sprintf("reserved(%x)", a.Opaque)
	case !a.AddrPort.IsValid():
		return "nil"
	}
	return a.AddrPort.Addr().String() + "/" + fmt.Sprint(a.AddrPort.Port())
}

// Scope classifies an IP the way zerotier-one does when deciding what may be a physical path.
type Scope int

// Scopes, with zerotier-one's numbering.
const (
	ScopeNone          Scope = 0
	ScopeMulticast     Scope = 1
	ScopeLoopback      Scope = 2
	ScopePseudoPrivate Scope = 3 // unrouted IPv4 blocks often used privately (e.g. 28/8)
	ScopeGlobal        Scope = 4
	ScopeLinkLocal     Scope = 5
	ScopeShared        Scope = 6
	ScopePrivate       Scope = 7
)

// IPScope returns the scope of ip.
func IPScope(ip netip.Addr) Scope {
	if ip.Is4() {
		a := ip.As4()
		v := binary.BigEndian.Uint32(a[:])
		switch a[0] {
		case 0, 0xff:
			return ScopeNone
		case 6, 11, 21, 22, 25, 26, 28, 29, 30, 51, 55, 56:
			return ScopePseudoPrivate
		case 10:
			return ScopePrivate
		case 127:
			return ScopeLoopback
		}
		for _, r := range []struct {
			mask, net uint32
			s         Scope
		}{
			{0xffc00000, 0x64400000, ScopePrivate},   // 100.64/10
			{0xffff0000, 0xa9fe0000, ScopeLinkLocal}, // 169.254/16
			{0xfff00000, 0xac100000, ScopePrivate},   // 172.16/12
			{0xffff0000, 0xc0a80000, ScopePrivate},   // 192.168/16
			{0xffffff00, 0xc0000200, ScopePrivate},   // 192.0.2/24
			{0xfffe0000, 0xc6120000, ScopePrivate},   // 198.18/15
			{0xffffff00, 0xc6336400, ScopePrivate},   // 198.51.100/24
			{0xffffff00, 0xcb007100, ScopePrivate},   // 203.0.113/24
			{0xf0000000, 0xe0000000, ScopeMulticast}, // 224/4
			{0xf0000000, 0xf0000000, ScopePseudoPrivate},
		} {
			if v&r.mask == r.net {
				return r.s
			}
		}
		return ScopeGlobal
	}
	if !ip.Is6() {
		return ScopeNone
	}
	a := ip.As16()
	switch {
	case a[0] == 0xff:
		return ScopeMulticast
	case a[0] == 0xfe && a[1]&0xc0 == 0x80:
		if a == [16]byte{0xfe, 0x80, 15: 1} {
			return ScopeLoopback
		}
		return ScopeLinkLocal
	case a[0]&0xfe == 0xfc:
		return ScopePrivate
	case ip.Is4In6() && a[12] == 127:
		return ScopeLoopback
	case ip == netip.IPv6Loopback():
		return ScopeLoopback
	case ip == netip.IPv6Unspecified():
		return ScopeNone
	}
	return ScopeGlobal
}
