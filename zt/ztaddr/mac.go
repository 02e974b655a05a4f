package ztaddr

import (
	"encoding/binary"
	"fmt"
	"net"
)

// MAC is an Ethernet address.
type MAC [6]byte

// Broadcast is ff:ff:ff:ff:ff:ff.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// MACFrom reads a MAC from the first 6 bytes of b.
func MACFrom(b []byte) MAC { return MAC(b[:6]) }

// FirstOctet is the first MAC byte of every member of network n: its low byte with the
// multicast bit cleared and the locally-administered bit set, except that 0x52 (used by
// KVM/libvirt) becomes 0x32.
func FirstOctet(n NetworkID) byte {
	b := byte(n)&0xfe | 0x02
	if b == 0x52 {
		return 0x32
	}
	return b
}

// NodeMAC is the Ethernet address of node a on network n: FirstOctet(n), then the address
// XORed with bytes 1..5 (counting from the least significant) of the network ID.
func NodeMAC(a Address, n NetworkID) MAC {
	m := uint64(FirstOctet(n))<<40 | (uint64(a)&0xffffffffff ^ macMask(n))
	var out MAC
	binary.BigEndian.PutUint16(out[0:], uint16(m>>32))
	binary.BigEndian.PutUint32(out[2:], uint32(m))
	return out
}

// macMask is the XOR mask applied to the address part of a member MAC.
func macMask(n NetworkID) uint64 {
	v := uint64(n)
	return (v>>8&0xff)<<32 | (v>>16&0xff)<<24 | (v>>24&0xff)<<16 | (v>>32&0xff)<<8 | v>>40&0xff
}

// NodeAddress inverts NodeMAC. ok is false if m cannot belong to a member of n (wrong first
// octet, or the address would be reserved).
func (m MAC) NodeAddress(n NetworkID) (a Address, ok bool) {
	if m[0] != FirstOctet(n) {
		return 0, false
	}
	a = Address(m.uint64()&0xffffffffff ^ macMask(n))
	return a, !a.IsReserved()
}

func (m MAC) uint64() uint64 {
	return uint64(binary.BigEndian.Uint16(m[0:]))<<32 | uint64(binary.BigEndian.Uint32(m[2:]))
}

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// String is the colon-separated lowercase form.
func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// ParseMAC parses the colon- or dash-separated form of a 6-byte MAC.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return MAC{}, fmt.Errorf("MAC %q: not a 6-byte Ethernet address", s)
	}
	return MAC(hw), nil
}
