package ztaddr

import (
	"encoding/binary"
	"net/netip"
)

// RFC4193 is the managed IPv6 address a controller assigns to node a on network n in "rfc4193"
// mode: fd ‖ network ID ‖ 99 93 ‖ address, in a /88 shared by the network's members.
func RFC4193(n NetworkID, a Address) netip.Prefix {
	var ip [16]byte
	ip[0] = 0xfd
	binary.BigEndian.PutUint64(ip[1:], uint64(n))
	ip[9], ip[10] = 0x99, 0x93
	a.Put(ip[11:])
	return netip.PrefixFrom(netip.AddrFrom16(ip), 88)
}

// SixPlane is the managed IPv6 address of node a on network n in "6plane" mode: fc ‖ the
// network ID folded to 32 bits ‖ address ‖ zeros ‖ 01, in a /40 per node (the node may route
// the whole /80 below its address).
func SixPlane(n NetworkID, a Address) netip.Prefix {
	v := uint64(n) ^ uint64(n)>>32
	var ip [16]byte
	ip[0] = 0xfc
	binary.BigEndian.PutUint32(ip[1:], uint32(v))
	a.Put(ip[5:])
	ip[15] = 0x01
	return netip.PrefixFrom(netip.AddrFrom16(ip), 40)
}
