package wire

import (
	"fmt"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// ProtocolVersion is the protocol version zerotier-one 1.14 announces; peers announcing ≥ 12
// get AES-GMAC-SIV, and we announce it to get it too. Versions below MinProtocolVersion are
// refused.
const (
	ProtocolVersion    = 12
	MinProtocolVersion = 4
)

// MoonRef names a world a node has or wants in its HELLO (timestamp 0 = wanted, not yet held).
type MoonRef struct {
	Type      world.Type
	ID        uint64
	Timestamp uint64
}

// Hello is the HELLO payload. It is sent with cipher 0 (authenticated, not encrypted), and
// the moon list is hidden with CryptField (see CryptHello).
type Hello struct {
	ProtocolVersion    uint8
	Major, Minor       uint8
	Revision           uint16
	Timestamp          uint64 // sender's clock; echoed in the OK for latency
	Identity           *identity.Identity
	Destination        ztaddr.InetAddress // the physical address the HELLO was sent to
	PlanetID, PlanetTS uint64
	Moons              []MoonRef
	Trailing           []byte // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

const helloFixedSize = 1 + 1 + 1 + 2 + 8

// Append appends the plaintext payload.
func (h *Hello) Append(b []byte) []byte {
	b = append(b, h.ProtocolVersion, h.Major, h.Minor)
	b = bin.AppendU16(b, h.Revision)
	b = bin.AppendU64(b, h.Timestamp)
	b = h.Identity.AppendBinary(b, false)
	b = h.Destination.Append(b)
	b = bin.AppendU64(b, h.PlanetID)
	b = bin.AppendU64(b, h.PlanetTS)
	b = bin.AppendU16(b, uint16(len(h.Moons)))
	for _, m := range h.Moons {
		b = append(b, byte(m.Type))
		b = bin.AppendU64(b, m.ID)
		b = bin.AppendU64(b, m.Timestamp)
	}
	return append(b, h.Trailing...)
}

// ParseHelloIdentity reads just the sender's identity, which is needed (to agree on a key and
// dearmor) before the rest can be decoded.
func ParseHelloIdentity(payload []byte) (*identity.Identity, error) {
	if len(payload) < helloFixedSize {
		return nil, fmt.Errorf("%w: HELLO of %d bytes", ErrBadPayload, len(payload))
	}
	id, _, err := identity.Unmarshal(payload[helloFixedSize:])
	if err != nil {
		return nil, fmt.Errorf("%w: HELLO: %v", ErrBadPayload, err)
	}
	return id, nil
}

// helloCryptStart is the payload offset where CryptField begins (after the planet fields), or
// len(payload) if the HELLO stops before.
func helloCryptStart(payload []byte) (int, error) {
	r := bin.Reader{B: payload}
	r.Take(helloFixedSize)
	if r.Err == nil {
		if _, n, err := identity.Unmarshal(payload[r.Off:]); err != nil {
			r.Fail(err)
		} else {
			r.Off += n
		}
	}
	if r.Len() > 0 {
		r.InetAddress()
	}
	if r.Len() >= 16 {
		r.Take(16)
	}
	if r.Err != nil {
		return 0, fmt.Errorf("%w: HELLO: %v", ErrBadPayload, r.Err)
	}
	return r.Off, nil
}

// CryptHello hides or reveals (the operation is its own inverse) a HELLO's moon list: the
// sender applies it before Armor, the receiver after Dearmor.
func CryptHello(p Packet, k *Key) error {
	start, err := helloCryptStart(p.Payload())
	if err != nil {
		return err
	}
	CryptField(p, k, HeaderSize+start)
	return nil
}

// ParseHello decodes a plaintext HELLO payload. Like zerotier-one it accepts HELLOs that stop
// after any section (older senders).
func ParseHello(payload []byte) (*Hello, error) {
	id, err := ParseHelloIdentity(payload)
	if err != nil {
		return nil, err
	}
	r := bin.Reader{B: payload}
	h := &Hello{ProtocolVersion: r.U8(), Major: r.U8(), Minor: r.U8(), Revision: r.U16(), Timestamp: r.U64(), Identity: id}
	_, n, _ := identity.Unmarshal(payload[r.Off:])
	r.Off += n
	if r.Len() > 0 {
		h.Destination = r.InetAddress()
	}
	if r.Len() >= 16 {
		h.PlanetID, h.PlanetTS = r.U64(), r.U64()
	}
	if r.Len() >= 2 {
		n := int(r.U16())
		if n*17 > r.Len() {
			return nil, fmt.Errorf("%w: HELLO lists %d moons in %d bytes", ErrBadPayload, n, r.Len())
		}
		for range n {
			h.Moons = append(h.Moons, MoonRef{Type: world.Type(r.U8()), ID: r.U64(), Timestamp: r.U64()})
		}
	}
	h.Trailing = trailing(&r)
	return h, payloadErr(VerbHello, &r)
}

// HelloOK is the body of OK(HELLO).
type HelloOK struct {
	Timestamp       uint64 // echoed from the HELLO
	ProtocolVersion uint8
	Major, Minor    uint8
	Revision        uint16
	// PhysicalAddress is where the responder saw the HELLO come from (our external address).
	PhysicalAddress ztaddr.InetAddress
	// Worlds holds serialized planet/moon updates (see ParseWorlds), empty if none.
	Worlds   []byte
	Trailing []byte // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

// Append appends the body.
func (o *HelloOK) Append(b []byte) []byte {
	b = bin.AppendU64(b, o.Timestamp)
	b = append(b, o.ProtocolVersion, o.Major, o.Minor)
	b = bin.AppendU16(b, o.Revision)
	b = o.PhysicalAddress.Append(b)
	b = bin.AppendU16(b, uint16(len(o.Worlds)))
	return append(append(b, o.Worlds...), o.Trailing...)
}

// ParseHelloOK decodes the body of OK(HELLO).
func ParseHelloOK(body []byte) (*HelloOK, error) {
	r := bin.Reader{B: body}
	o := &HelloOK{Timestamp: r.U64(), ProtocolVersion: r.U8(), Major: r.U8(), Minor: r.U8(), Revision: r.U16()}
	if r.Err == nil && r.Len() > 0 {
		o.PhysicalAddress = r.InetAddress()
	}
	if r.Err == nil && r.Len() >= 2 {
		o.Worlds = r.Copy(int(r.U16()))
	}
	o.Trailing = trailing(&r)
	return o, payloadErr(VerbOK, &r)
}

// ParseWorlds decodes the world updates.
func (o *HelloOK) ParseWorlds() ([]*world.World, error) {
	var ws []*world.World
	for b := o.Worlds; len(b) > 0; {
		w, n, err := world.Parse(b)
		if err != nil {
			return nil, err
		}
		ws, b = append(ws, w), b[n:]
	}
	return ws, nil
}
