package netconf

import (
	"encoding/binary"
	"fmt"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Reserved COM qualifier IDs. IDs 3..6 carry the first 32 bytes of the member's
// PublicKeyHash as four big-endian words.
const (
	QualifierTimestamp = 0
	QualifierNetworkID = 1
	QualifierIssuedTo  = 2
)

// MaxQualifiers is the most qualifiers a COM may carry.
const MaxQualifiers = 8

// Qualifier is one (id, value, max delta) tuple of a COM.
type Qualifier struct {
	ID, Value, MaxDelta uint64
}

// COM is a certificate of membership: proof, signed by the controller, that a node belongs to a
// private network at a point in time. Members accept each other's frames while their COMs
// "agree" (see AgreesWith).
type COM struct {
	Qualifiers []Qualifier // sorted by ID
	SignedBy   ztaddr.Address
	Signature  identity.Signature
}

// NewCOM builds the unsigned COM a controller issues: timestamp (with maxDelta), network ID,
// issued-to address and the member's public key hash.
func NewCOM(timestamp int64, maxDelta uint64, nwid ztaddr.NetworkID, member *identity.Identity) *COM {
	h := member.PublicKeyHash()
	c := &COM{Qualifiers: []Qualifier{
		{QualifierTimestamp, uint64(timestamp), maxDelta},
		{QualifierNetworkID, uint64(nwid), 0},
		{QualifierIssuedTo, uint64(member.Address()), ^uint64(0)},
	}}
	for i := range 4 {
		c.Qualifiers = append(c.Qualifiers, Qualifier{uint64(3 + i), binary.BigEndian.Uint64(h[8*i:]), ^uint64(0)})
	}
	return c
}

// ParseCOM reads a COM at the start of b and returns it with its length.
func ParseCOM(b []byte) (*COM, int, error) {
	r := bin.Reader{B: b}
	if v := r.U8(); r.Err == nil && v != 1 {
		return nil, 0, fmt.Errorf("%w: COM format %d", ErrBadCredential, v)
	}
	n := int(r.U16())
	if n > MaxQualifiers {
		return nil, 0, fmt.Errorf("%w: COM has %d qualifiers", ErrBadCredential, n)
	}
	c := &COM{Qualifiers: make([]Qualifier, 0, n)}
	for i := range n {
		q := Qualifier{r.U64(), r.U64(), r.U64()}
		if i > 0 && q.ID < c.Qualifiers[i-1].ID {
			r.Fail(fmt.Errorf("%w: COM qualifiers out of order", ErrBadCredential))
		}
		c.Qualifiers = append(c.Qualifiers, q)
	}
	c.SignedBy = r.Address()
	if c.SignedBy != 0 {
		copy(c.Signature[:], r.Take(identity.SignatureSize))
	}
	if err := finish(&r, "COM"); err != nil {
		return nil, 0, err
	}
	return c, r.Off, nil
}

// Append appends the encoding.
func (c *COM) Append(b []byte) []byte {
	b = append(b, 1)
	b = bin.AppendU16(b, uint16(len(c.Qualifiers)))
	b = c.appendQualifiers(b)
	b = c.SignedBy.Append(b)
	if c.SignedBy != 0 {
		b = append(b, c.Signature[:]...)
	}
	return b
}

func (c *COM) appendQualifiers(b []byte) []byte {
	for _, q := range c.Qualifiers {
		b = bin.AppendU64(b, q.ID)
		b = bin.AppendU64(b, q.Value)
		b = bin.AppendU64(b, q.MaxDelta)
	}
	return b
}

func (c *COM) qualifier(id uint64) (uint64, bool) {
	for _, q := range c.Qualifiers {
		if q.ID == id {
			return q.Value, true
		}
	}
	return 0, false
}

// Timestamp is the issue time (controller clock, ms).
func (c *COM) Timestamp() int64 { v, _ := c.qualifier(QualifierTimestamp); return int64(v) }

// NetworkID is the network the COM is for.
func (c *COM) NetworkID() ztaddr.NetworkID {
	v, _ := c.qualifier(QualifierNetworkID)
	return ztaddr.NetworkID(v)
}

// IssuedTo is the member the COM was issued to.
func (c *COM) IssuedTo() ztaddr.Address {
	v, _ := c.qualifier(QualifierIssuedTo)
	return ztaddr.Address(v)
}

// Sign signs the qualifiers with the controller's identity.
func (c *COM) Sign(controller *identity.Identity) error {
	sig, err := controller.Sign(c.appendQualifiers(nil))
	if err != nil {
		return err
	}
	c.Signature, c.SignedBy = sig, controller.Address()
	return nil
}

// Verify checks that the COM is signed by the controller of its network, whose identity is
// controller.
func (c *COM) Verify(controller *identity.Identity) error {
	if len(c.Qualifiers) > MaxQualifiers {
		return fmt.Errorf("%w: too many qualifiers", ErrBadCredential)
	}
	if err := checkSigner(c.NetworkID(), c.SignedBy, controller); err != nil {
		return err
	}
	return verifySig(controller, c.appendQualifiers(nil), &c.Signature)
}

// AgreesWith reports whether a peer holding theirs (and identity theirID) may talk to the holder
// of c: every qualifier of c must be present in theirs within c's max delta, and if c carries
// the identity hash (IDs 3..6), theirs must carry the hash of theirID.
func (c *COM) AgreesWith(theirs *COM, theirID *identity.Identity) bool {
	if len(c.Qualifiers) == 0 || len(theirs.Qualifiers) == 0 {
		return false
	}
	fullID := false
	for _, q := range c.Qualifiers {
		if q.ID >= 3 && q.ID <= 6 {
			fullID = true
		}
		v, ok := theirs.qualifier(q.ID)
		if !ok {
			return false
		}
		d := q.Value - v
		if v > q.Value {
			d = v - q.Value
		}
		if d > q.MaxDelta {
			return false
		}
	}
	if fullID {
		h := theirID.PublicKeyHash()
		for i := range 4 {
			v, ok := theirs.qualifier(uint64(3 + i))
			if !ok || v != binary.BigEndian.Uint64(h[8*i:]) {
				return false
			}
		}
	}
	return true
}
