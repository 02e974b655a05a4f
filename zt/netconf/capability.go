package netconf

import (
	"fmt"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Limits on capabilities.
const (
	MaxCapabilityRules = 64
	MaxCustodyChain    = 7
)

// Custody is one link of a capability's chain of custody: from hands the capability to to.
type Custody struct {
	To, From  ztaddr.Address
	Signature identity.Signature
}

// Capability is a signed set of rules that lets its holder do what the network rules alone
// would not. Entry 0 of the custody chain is the controller issuing it to a member.
type Capability struct {
	NetworkID       ztaddr.NetworkID
	Timestamp       int64
	ID              uint32
	Rules           []Rule
	MaxCustodyChain uint8 // 1..7
	Custody         []Custody
	Ext             []byte
}

func (c *Capability) appendFields(b []byte) []byte {
	b = bin.AppendU64(b, uint64(c.NetworkID))
	b = bin.AppendU64(b, uint64(c.Timestamp))
	b = bin.AppendU32(b, c.ID)
	b = bin.AppendU16(b, uint16(len(c.Rules)))
	b = AppendRules(b, c.Rules)
	return append(b, c.MaxCustodyChain)
}

// Append appends the encoding.
func (c *Capability) Append(b []byte) []byte {
	b = c.appendFields(b)
	for _, e := range c.Custody {
		b = e.To.Append(b)
		b = e.From.Append(b)
		b = appendSignature(b, &e.Signature)
	}
	b = append(b, 0, 0, 0, 0, 0)
	return appendExt(b, c.Ext)
}

func (c *Capability) forSign() []byte {
	b := append(c.appendFields(append([]byte{}, forSignGuard...)), 0, 0)
	return append(b, forSignGuard...)
}

// IssuedTo is the current holder: the last recipient in the custody chain.
func (c *Capability) IssuedTo() ztaddr.Address {
	if len(c.Custody) == 0 {
		return 0
	}
	return c.Custody[len(c.Custody)-1].To
}

// ParseCapability reads a capability at the start of b and returns it with its length.
func ParseCapability(b []byte) (*Capability, int, error) {
	r := bin.Reader{B: b}
	c := &Capability{NetworkID: ztaddr.NetworkID(r.U64()), Timestamp: int64(r.U64()), ID: r.U32()}
	n := int(r.U16())
	if n > MaxCapabilityRules {
		return nil, 0, fmt.Errorf("%w: capability has %d rules", ErrBadCredential, n)
	}
	for range n {
		c.Rules = append(c.Rules, readRule(&r))
	}
	c.MaxCustodyChain = r.U8()
	if r.Err == nil && (c.MaxCustodyChain < 1 || c.MaxCustodyChain > MaxCustodyChain) {
		return nil, 0, fmt.Errorf("%w: custody chain length %d", ErrBadCredential, c.MaxCustodyChain)
	}
	for r.Err == nil {
		to := r.Address()
		if to == 0 {
			break
		}
		if len(c.Custody) == int(c.MaxCustodyChain) {
			return nil, 0, fmt.Errorf("%w: custody chain longer than %d", ErrBadCredential, c.MaxCustodyChain)
		}
		e := Custody{To: to, From: r.Address()}
		e.Signature = readSignature(&r)
		c.Custody = append(c.Custody, e)
	}
	c.Ext = readExt(&r)
	if err := finish(&r, "capability"); err != nil {
		return nil, 0, err
	}
	return c, r.Off, nil
}

// Sign adds a custody entry: from (the controller for the first entry, else the current
// holder) hands the capability to to.
func (c *Capability) Sign(from *identity.Identity, to ztaddr.Address) error {
	if len(c.Custody) >= int(c.MaxCustodyChain) || len(c.Custody) >= MaxCustodyChain {
		return fmt.Errorf("%w: custody chain full", ErrBadCredential)
	}
	sig, err := from.Sign(c.forSign())
	if err != nil {
		return err
	}
	c.Custody = append(c.Custody, Custody{To: to, From: from.Address(), Signature: sig})
	return nil
}

// Verify checks the custody chain: entry 0 from the controller, each later entry from the
// previous recipient, every signature valid. lookup returns the identity of a signer, or nil if
// it is unknown (Verify then fails with identity.ErrInvalid wrapped).
func (c *Capability) Verify(lookup func(ztaddr.Address) *identity.Identity) error {
	if c.MaxCustodyChain < 1 || c.MaxCustodyChain > MaxCustodyChain || len(c.Custody) == 0 {
		return fmt.Errorf("%w: no custody chain", ErrUnsigned)
	}
	msg := c.forSign()
	for i, e := range c.Custody {
		want := c.NetworkID.Controller()
		if i > 0 {
			want = c.Custody[i-1].To
		}
		if e.From != want || e.To == 0 {
			return fmt.Errorf("%w: custody entry %d from %s, want %s", ErrWrongSigner, i, e.From, want)
		}
		id := lookup(e.From)
		if id == nil {
			return fmt.Errorf("capability signer %s: %w", e.From, identity.ErrInvalid)
		}
		if err := verifySig(id, msg, &e.Signature); err != nil {
			return err
		}
	}
	return nil
}
