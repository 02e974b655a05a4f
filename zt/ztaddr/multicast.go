package ztaddr

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// MulticastGroup names a multicast group: a multicast MAC plus a 32-bit "additional
// distinguishing information" (ADI). IPv4 ARP uses the broadcast MAC with the IPv4 address
// being resolved as ADI; everything else uses ADI 0.
type MulticastGroup struct {
	MAC MAC
	ADI uint32
}

// MulticastGroupLength is the size of a group on the wire (MAC, then big-endian ADI).
const MulticastGroupLength = 10

// Append appends the 10-byte wire form.
func (g MulticastGroup) Append(b []byte) []byte {
	b = append(b, g.MAC[:]...)
	return binary.BigEndian.AppendUint32(b, g.ADI)
}

// MulticastGroupFrom reads a group from the first 10 bytes of b.
func MulticastGroupFrom(b []byte) MulticastGroup {
	return MulticastGroup{MAC: MACFrom(b), ADI: binary.BigEndian.Uint32(b[6:10])}
}

func (g MulticastGroup) String() string { return fmt.Sprintf("%s/%08x", g.MAC, g.ADI) }

// AddressResolutionGroup is the group a node must subscribe to so that others can resolve ip
// to its MAC: for IPv4 the ARP group (broadcast, ADI = ip); for IPv6 the solicited-node group
// 33:33:ff:xx:xx:xx of NDP.
func AddressResolutionGroup(ip netip.Addr) (MulticastGroup, bool) {
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		a := ip.As4()
		return MulticastGroup{MAC: Broadcast, ADI: binary.BigEndian.Uint32(a[:])}, true
	case ip.Is6():
		a := ip.As16()
		return MulticastGroup{MAC: MAC{0x33, 0x33, 0xff, a[13], a[14], a[15]}}, true
	}
	return MulticastGroup{}, false
}

// Ethernet types the group mapping looks into.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeIPv6 = 0x86dd
)

// GroupForFrame maps an outgoing Ethernet frame to a multicast destination MAC onto the group
// it is sent to, as zerotier-one's switch does: an IPv4 ARP request to the broadcast MAC goes
// to the ARP group of its target address; other broadcasts to (broadcast, 0); any other
// multicast MAC to (MAC, 0). ok is false if dst is not multicast.
func GroupForFrame(dst MAC, etherType uint16, payload []byte) (g MulticastGroup, ok bool) {
	if !dst.IsMulticast() {
		return MulticastGroup{}, false
	}
	if dst == Broadcast && etherType == EtherTypeARP && len(payload) >= 28 &&
		payload[2] == 0x08 && payload[3] == 0x00 && payload[4] == 6 && payload[5] == 4 && payload[7] == 1 {
		return MulticastGroup{MAC: Broadcast, ADI: binary.BigEndian.Uint32(payload[24:28])}, true
	}
	return MulticastGroup{MAC: dst}, true
}
