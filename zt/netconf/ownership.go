package netconf

import (
	"fmt"
	"net/netip"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Kinds of things a certificate of ownership can list.
const (
	ThingMAC  = 1
	ThingIPv4 = 2
	ThingIPv6 = 3
)

// MaxThings is the most things one certificate of ownership lists.
const MaxThings = 16

// Thing is one owned address, its value left-aligned and zero-padded.
type Thing struct {
	Type  uint8
	Value [16]byte
}

// COO is a certificate of ownership: the controller's statement that a member owns some IP or
// MAC addresses (controllers issue one listing the member's assigned IPs).
type COO struct {
	NetworkID ztaddr.NetworkID
	Timestamp int64
	Flags     uint64
	ID        uint32
	Things    []Thing
	IssuedTo  ztaddr.Address
	SignedBy  ztaddr.Address
	Signature identity.Signature
	Ext       []byte
}

// AddIP lists ip as owned.
func (c *COO) AddIP(ip netip.Addr) {
	t := Thing{Type: ThingIPv6}
	if ip.Is4() {
		t.Type = ThingIPv4
	}
	copy(t.Value[:], ip.AsSlice())
	c.Things = append(c.Things, t)
}

// AddMAC lists m as owned.
func (c *COO) AddMAC(m ztaddr.MAC) {
	t := Thing{Type: ThingMAC}
	copy(t.Value[:], m[:])
	c.Things = append(c.Things, t)
}

// Owns reports whether ip is listed.
func (c *COO) Owns(ip netip.Addr) bool {
	for _, t := range c.Things {
		if (t.Type == ThingIPv4 && ip.Is4() && [4]byte(t.Value[:4]) == ip.As4()) ||
			(t.Type == ThingIPv6 && ip.Is6() && t.Value == ip.As16()) {
			return true
		}
	}
	return false
}

func (c *COO) appendFields(b []byte) []byte {
	b = bin.AppendU64(b, uint64(c.NetworkID))
	b = bin.AppendU64(b, uint64(c.Timestamp))
	b = bin.AppendU64(b, c.Flags)
	b = bin.AppendU32(b, c.ID)
	b = bin.AppendU16(b, uint16(len(c.Things)))
	for _, t := range c.Things {
		b = append(b, t.Type)
		b = append(b, t.Value[:]...)
	}
	b = c.IssuedTo.Append(b)
	return c.SignedBy.Append(b)
}

// Append appends the encoding.
func (c *COO) Append(b []byte) []byte {
	b = appendSignature(c.appendFields(b), &c.Signature)
	return appendExt(b, c.Ext)
}

func (c *COO) forSign() []byte {
	b := append(c.appendFields(append([]byte{}, forSignGuard...)), 0, 0)
	return append(b, forSignGuard...)
}

// ParseCOO reads a certificate of ownership at the start of b and returns it with its length.
func ParseCOO(b []byte) (*COO, int, error) {
	r := bin.Reader{B: b}
	c := &COO{NetworkID: ztaddr.NetworkID(r.U64()), Timestamp: int64(r.U64()), Flags: r.U64(), ID: r.U32()}
	n := int(r.U16())
	if n > MaxThings {
		return nil, 0, fmt.Errorf("%w: certificate of ownership lists %d things", ErrBadCredential, n)
	}
	for range n {
		t := Thing{Type: r.U8()}
		copy(t.Value[:], r.Take(16))
		c.Things = append(c.Things, t)
	}
	c.IssuedTo, c.SignedBy = r.Address(), r.Address()
	c.Signature = readSignature(&r)
	c.Ext = readExt(&r)
	if err := finish(&r, "certificate of ownership"); err != nil {
		return nil, 0, err
	}
	return c, r.Off, nil
}

// Sign signs the certificate as the network's controller.
func (c *COO) Sign(controller *identity.Identity) (err error) {
	c.SignedBy = controller.Address()
	c.Signature, err = controller.Sign(c.forSign())
	return err
}

// Verify checks the controller's signature.
func (c *COO) Verify(controller *identity.Identity) error {
	if err := checkSigner(c.NetworkID, c.SignedBy, controller); err != nil {
		return err
	}
	return verifySig(controller, c.forSign(), &c.Signature)
}
