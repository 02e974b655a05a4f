package supervisor

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Raw ICMP sockets are emulated on an echo endpoint, for what ping and similar programs do
// with them: send echo requests, read echo replies. The stack's echo endpoint has its own
// identifier (its bound "port"); replies are handed to the program with the identifier it
// used in its requests, and, for IPv4, after an IPv4 header as a raw socket delivers them.

const (
	ipv4HeaderLen   = 20
	icmpEchoRequest = 8
	icmp6EchoReq    = 128
)

// rawSend checks a datagram a raw ICMP socket sends (only echo requests can be emulated) and
// notes its identifier.
func (d *dgram) rawSend(b []byte) error {
	want := byte(icmpEchoRequest)
	if d.v6 {
		want = icmp6EchoReq
	}
	if len(b) < 8 || b[0] != want || b[1] != 0 {
		return unix.EPERM
	}
	d.mu.Lock()
	d.rawID, d.hasRaw = binary.BigEndian.Uint16(b[4:6]), true
	d.mu.Unlock()
	return nil
}

// setEchoID puts id into an echo reply (ICMP or ICMPv6) and corrects its checksum
// incrementally (RFC 1624), which works for ICMPv6's pseudo-header checksum too.
func setEchoID(b []byte, id uint16) {
	if len(b) < 8 {
		return
	}
	old := binary.BigEndian.Uint16(b[4:6])
	if old == id {
		return
	}
	sum := uint32(^binary.BigEndian.Uint16(b[2:4])) + uint32(^old) + uint32(id)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[2:4], ^uint16(sum))
	binary.BigEndian.PutUint16(b[4:6], id)
}

// putIPv4Header writes the IPv4 header of a received ICMP message into b (20 bytes): source
// and destination from its record, TTL and TOS as received.
func putIPv4Header(b []byte, m *dgramMsg, local netip.Addr) {
	clear(b[:ipv4HeaderLen])
	b[0] = 0x45
	if m.h.HasTOS {
		b[1] = m.h.TOS
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(ipv4HeaderLen+m.total))
	b[6] = 0x40 // don't fragment
	b[8] = 64
	if m.h.HasTTL {
		b[8] = m.h.TTL
	}
	b[9] = unix.IPPROTO_ICMP
	src := m.h.Remote.Addr().Unmap()
	dst := m.h.Local.Unmap()
	if !dst.Is4() {
		dst = local.Unmap()
	}
	if src.Is4() {
		a := src.As4()
		copy(b[12:16], a[:])
	}
	if dst.Is4() {
		a := dst.As4()
		copy(b[16:20], a[:])
	}
	binary.BigEndian.PutUint16(b[10:12], ipChecksum(b[:ipv4HeaderLen]))
}

func ipChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
