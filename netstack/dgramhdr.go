package netstack

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// DatagramHeaderLen is the size of the header a spliced datagram endpoint puts before each
// datagram it delivers while address headers are on (SetAddressHeaders).
const DatagramHeaderLen = 44

// DatagramHeader describes where a received datagram came from, for recvfrom's address and
// recvmsg's control messages.
//
// Wire format (big-endian, 44 bytes):
//
//	0      version (1)
//	1      flags: 1 addresses are IPv6, 2 Local is set, 4 TOS is set, 8 TTL is set
//	2..3   source port (0 for ICMP echo replies, as Linux reports)
//	4..19  source address as the socket shows it (IPv4: bytes 4..7, the rest zero; a
//	       dual-stack socket sees IPv4 sources as v4-mapped IPv6 addresses)
//	20..35 local address the datagram was sent to (IP_PKTINFO's ipi_addr / IPV6_PKTINFO)
//	36..39 interface index it arrived on (also the scope of link-local addresses)
//	40     TOS or traffic class (IP_RECVTOS / IPV6_RECVTCLASS)
//	41     TTL or hop limit (IP_RECVTTL / IPV6_RECVHOPLIMIT)
//	42..43 zero
type DatagramHeader struct {
	Remote  netip.AddrPort // link-local IPv6 sources carry IfIndex as their zone
	Local   netip.Addr     // invalid when unknown
	IfIndex uint32
	TOS     uint8
	TTL     uint8
	HasTOS  bool
	HasTTL  bool
}

const (
	dgramHdrVersion = 1

	dgramFlagV6    = 1
	dgramFlagLocal = 2
	dgramFlagTOS   = 4
	dgramFlagTTL   = 8
	dgramFlagsAll  = dgramFlagV6 | dgramFlagLocal | dgramFlagTOS | dgramFlagTTL
)

var errDatagramHeader = errors.New("netstack: malformed datagram header")

// Encode writes the header into b[:DatagramHeaderLen].
func (h *DatagramHeader) Encode(b []byte) {
	b = b[:DatagramHeaderLen]
	clear(b)
	b[0] = dgramHdrVersion
	var flags byte
	a := h.Remote.Addr()
	v6 := a.Is6() // v4-mapped sources (dual-stack sockets) stay as they are
	if v6 {
		flags |= dgramFlagV6
	}
	binary.BigEndian.PutUint16(b[2:4], h.Remote.Port())
	putAddr(b[4:20], a, v6)
	if h.Local.IsValid() {
		flags |= dgramFlagLocal
		putAddr(b[20:36], h.Local, v6)
	}
	binary.BigEndian.PutUint32(b[36:40], h.IfIndex)
	if h.HasTOS {
		flags |= dgramFlagTOS
		b[40] = h.TOS
	}
	if h.HasTTL {
		flags |= dgramFlagTTL
		b[41] = h.TTL
	}
	b[1] = flags
}

func putAddr(b []byte, a netip.Addr, v6 bool) {
	if !v6 {
		a = a.Unmap()
	}
	if v6 {
		a16 := a.As16()
		copy(b, a16[:])
		return
	}
	if a.Is4() {
		a4 := a.As4()
		copy(b, a4[:])
	}
}

// DecodeDatagramHeader parses a header written by Encode. It rejects anything Encode would
// not have written.
func DecodeDatagramHeader(b []byte) (DatagramHeader, error) {
	var h DatagramHeader
	if len(b) < DatagramHeaderLen {
		return h, errDatagramHeader
	}
	flags := b[1]
	if b[0] != dgramHdrVersion || flags&^dgramFlagsAll != 0 || b[42] != 0 || b[43] != 0 {
		return h, errDatagramHeader
	}
	v6 := flags&dgramFlagV6 != 0
	remote, ok := getAddr(b[4:20], v6)
	if !ok {
		return h, errDatagramHeader
	}
	h.IfIndex = binary.BigEndian.Uint32(b[36:40])
	if v6 && (remote.IsLinkLocalUnicast() || remote.IsLinkLocalMulticast()) && h.IfIndex != 0 {
		remote = remote.WithZone(strconv.FormatUint(uint64(h.IfIndex), 10))
	}
	h.Remote = netip.AddrPortFrom(remote, binary.BigEndian.Uint16(b[2:4]))
	if flags&dgramFlagLocal != 0 {
		if h.Local, ok = getAddr(b[20:36], v6); !ok {
			return h, errDatagramHeader
		}
	} else if !allZero(b[20:36]) {
		return h, errDatagramHeader
	}
	h.HasTOS, h.HasTTL = flags&dgramFlagTOS != 0, flags&dgramFlagTTL != 0
	if (!h.HasTOS && b[40] != 0) || (!h.HasTTL && b[41] != 0) {
		return h, errDatagramHeader
	}
	h.TOS, h.TTL = b[40], b[41]
	return h, nil
}

func getAddr(b []byte, v6 bool) (netip.Addr, bool) {
	if v6 {
		return netip.AddrFrom16([16]byte(b[:16])), true
	}
	return netip.AddrFrom4([4]byte(b[:4])), allZero(b[4:16])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
