// Package wire implements the ZeroTier 1.x packet layer as zerotier-one 1.14 speaks it: the
// 28-byte packet header (as zero-copy accessors over the datagram), armor and dearmor for every
// cipher suite (Poly1305 MAC-only, Salsa20/12-Poly1305, AES-GMAC-SIV), LZ4 compression,
// fragmentation and reassembly, and the payload codecs of every verb a leaf or root exchanges.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Layout and limits of packets.
const (
	HeaderSize = 28 // packet ID, destination, source, flags, MAC, verb

	idxID      = 0
	idxDest    = 8
	idxSource  = 13
	idxFlags   = 18
	idxMAC     = 19
	idxVerb    = 27
	idxPayload = 28

	// MaxPacketSize is the largest assembled packet zerotier-one handles (7 × 1432).
	MaxPacketSize = 10024
	// DefaultPhysicalMTU is the largest UDP payload zerotier-one sends by default.
	DefaultPhysicalMTU = 1432
	// BeaconSize is the size of a legacy LAN beacon datagram, which is to be ignored.
	BeaconSize = 13
	// RelayMaxHops is the hop count beyond which packets are not relayed.
	RelayMaxHops = 3
)

// Flag bits of header byte 18 (bits FFCCCHHH).
const (
	flagEncryptedLegacy = 0x80 // set iff cipher 1, ignored on receipt
	flagFragmented      = 0x40
	maskCipher          = 0x38
	maskHops            = 0x07
	verbFlagCompressed  = 0x80
	maskVerb            = 0x1f
)

// ErrShortPacket is returned for datagrams too short to be a packet.
var ErrShortPacket = errors.New("packet shorter than its header")

// Packet is a ZeroTier packet (or the head of a fragmented one): accessors over the datagram's
// bytes, which are read and modified in place.
type Packet []byte

// NewPacket appends a 28-byte header for verb from src to dst with the given packet ID to b
// (normally b[:0] of a buffer with room for the payload) and returns the packet.
func NewPacket(b []byte, id uint64, dst, src ztaddr.Address, verb Verb) Packet {
	b = binary.BigEndian.AppendUint64(b, id)
	b = dst.Append(b)
	b = src.Append(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(verb))
	return Packet(b)
}

// AsPacket checks that b can hold a packet and returns it as one.
func AsPacket(b []byte) (Packet, error) {
	if len(b) < HeaderSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrShortPacket, len(b))
	}
	return Packet(b), nil
}

// ID is the packet ID (for AES-GMAC-SIV packets, after armor, the encrypted one replies quote).
func (p Packet) ID() uint64 { return binary.BigEndian.Uint64(p[idxID:]) }

// SetID sets the packet ID.
func (p Packet) SetID(id uint64) { binary.BigEndian.PutUint64(p[idxID:], id) }

// Destination is the recipient's address.
func (p Packet) Destination() ztaddr.Address { return ztaddr.AddressFrom(p[idxDest:]) }

// Source is the sender's address.
func (p Packet) Source() ztaddr.Address { return ztaddr.AddressFrom(p[idxSource:]) }

// Flags is the raw flags/cipher/hops byte.
func (p Packet) Flags() byte { return p[idxFlags] }

// Cipher is the cipher suite the packet is armored with.
func (p Packet) Cipher() Cipher { return Cipher(p[idxFlags] & maskCipher >> 3) }

// Fragmented reports whether more fragments follow this head.
func (p Packet) Fragmented() bool { return p[idxFlags]&flagFragmented != 0 }

// SetFragmented sets or clears the fragmented flag (before armor: the MAC covers it).
func (p Packet) SetFragmented(on bool) {
	if on {
		p[idxFlags] |= flagFragmented
	} else {
		p[idxFlags] &^= flagFragmented
	}
}

// Hops is how many relays the packet has passed.
func (p Packet) Hops() int { return int(p[idxFlags] & maskHops) }

// IncrementHops counts one more relay (wrapping at 8, as zerotier-one does); nothing else
// changes, so the end-to-end MAC stays valid.
func (p Packet) IncrementHops() {
	p[idxFlags] = p[idxFlags]&^maskHops | (p[idxFlags]+1)&maskHops
}

// MAC is the 8-byte authentication field.
func (p Packet) MAC() []byte { return p[idxMAC:idxVerb] }

// Verb is the verb (valid in plaintext only: it is encrypted with the payload).
func (p Packet) Verb() Verb { return Verb(p[idxVerb] & maskVerb) }

// SetVerb sets the verb, keeping the compression flag.
func (p Packet) SetVerb(v Verb) { p[idxVerb] = p[idxVerb]&^maskVerb | byte(v)&maskVerb }

// Compressed reports whether the payload is LZ4-compressed (plaintext only).
func (p Packet) Compressed() bool { return p[idxVerb]&verbFlagCompressed != 0 }

// Payload is the verb's payload (plaintext only).
func (p Packet) Payload() []byte { return p[idxPayload:] }

func (p Packet) String() string {
	return fmt.Sprintf("packet %016x %s->%s flags %02x len %d", p.ID(), p.Source(), p.Destination(), p.Flags(), len(p))
}

// DatagramKind is what a received UDP datagram is, by zerotier-one's dispatch rules.
type DatagramKind int

// Kinds of datagrams.
const (
	DatagramJunk     DatagramKind = iota // too short for anything (e.g. NAT-traversal probes): drop
	DatagramBeacon                       // 13-byte legacy LAN beacon: ignore
	DatagramFragment                     // a non-head fragment
	DatagramPacket                       // a packet, or the head of a fragmented one
)

// Classify tells fragments, packets, beacons and junk apart.
func Classify(b []byte) DatagramKind {
	switch {
	case len(b) == BeaconSize:
		return DatagramBeacon
	case IsFragment(b):
		return DatagramFragment
	case len(b) >= HeaderSize:
		return DatagramPacket
	}
	return DatagramJunk
}
