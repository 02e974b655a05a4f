package controller

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Pool assignment. The arithmetic is zerotier-one's, so that a member gets the same addresses
// from this controller as from zerotier-one's for the same network records.

// maxAssignTrials bounds the search of a pool for a free address.
const maxAssignTrials = 1000

// assignIPv4 picks a member's address from an IPv4 pool: starting at an offset given by the
// member's address, the first address that does not end in .255, lies in an on-config route
// (which gives the prefix length) and is not taken. The pool's last address is never chosen,
// as in zerotier-one.
func assignIPv4(start, end netip.Addr, routes []netconf.Route, member ztaddr.Address, taken func(netip.Addr) bool) (netip.Prefix, bool) {
	s, e := ipv4Uint(start), ipv4Uint(end)
	if e < s || s == 0 {
		return netip.Prefix{}, false
	}
	span := e - s
	counter := uint32(member)
	for k, trial := uint64(s), 0; k <= uint64(e) && trial < maxAssignTrials; k, trial = k+1, trial+1 {
		ip := s
		if span > 0 {
			ip = s + counter%span
		}
		counter++
		if ip&0xff == 0xff {
			continue
		}
		bits := -1
		for _, r := range routes {
			t := r.Target.AddrPort
			if !t.Addr().Is4() || t.Port() > 32 {
				continue
			}
			if ip&ipv4Mask(int(t.Port())) == ipv4Uint(t.Addr()) {
				bits = int(t.Port())
				break
			}
		}
		a := uint32ToIPv4(ip)
		if bits > 0 && !taken(a) {
			return netip.PrefixFrom(a, bits), true
		}
	}
	return netip.Prefix{}, false
}

// assignIPv6 picks a member's address from an IPv6 pool. If the pool's low 64 bits span at
// least 2^40 addresses, the first try is the pool start plus the member address; then random
// addresses of the pool. An address must lie in an on-link IPv6 route (the last such route
// gives the prefix length) and not be taken.
func assignIPv6(start, end netip.Addr, routes []netconf.Route, member ztaddr.Address, taken func(netip.Addr) bool, rnd *rand.Rand) (netip.Prefix, bool) {
	s, e := start.As16(), end.As16()
	s0, s1 := binary.BigEndian.Uint64(s[:8]), binary.BigEndian.Uint64(s[8:])
	e0, e1 := binary.BigEndian.Uint64(e[:8]), binary.BigEndian.Uint64(e[8:])
	for trial := 0; trial < maxAssignTrials; trial++ {
		var x0, x1 uint64
		if trial == 0 && e1 > s1 && e1-s1 >= 0xffffffffff {
			x0, x1 = s0, s1+uint64(member)
		} else {
			r0, r1 := rnd.Uint64(), rnd.Uint64()
			if e0 > s0 {
				x0 = s0 + r0%(e0-s0)
			} else {
				x0 = s0
			}
			if e1 > s1 {
				x1 = s1 + r1%(e1-s1)
			} else {
				x1 = s1
			}
		}
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], x0)
		binary.BigEndian.PutUint64(b[8:], x1)
		a := netip.AddrFrom16(b)
		bits := 0
		for _, r := range routes {
			t := r.Target.AddrPort
			if r.Via.IsNil() && t.Addr().Is6() && (inet{IP: t.Addr(), Port: int(t.Port())}).contains(a) {
				bits = int(t.Port())
			}
		}
		if bits > 0 && !taken(a) {
			return netip.PrefixFrom(a, bits), true
		}
	}
	return netip.Prefix{}, false
}

func ipv4Uint(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func uint32ToIPv4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// ipv4Mask is the netmask of a prefix length; like zerotier-one's shift on x86, /0 masks
// nothing away.
func ipv4Mask(bits int) uint32 {
	if bits == 0 {
		return 0xffffffff
	}
	return 0xffffffff << (32 - bits)
}
