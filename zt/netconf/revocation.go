package netconf

import (
	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// RevocationFastPropagate asks receivers to pass the revocation on to the other members.
const RevocationFastPropagate = 0x1

// Revocation withdraws a target's credentials of one type issued up to Threshold (for COMs: its
// certificates with timestamp ≤ Threshold are no longer accepted).
type Revocation struct {
	ID             uint32
	NetworkID      ztaddr.NetworkID
	CredentialID   uint32
	Threshold      int64
	Flags          uint64
	Target         ztaddr.Address
	SignedBy       ztaddr.Address
	CredentialType CredentialType
	Signature      identity.Signature
	Ext            []byte
}

func (v *Revocation) appendFields(b []byte) []byte {
	b = bin.AppendU32(b, 0)
	b = bin.AppendU32(b, v.ID)
	b = bin.AppendU64(b, uint64(v.NetworkID))
	b = bin.AppendU32(b, 0)
	b = bin.AppendU32(b, v.CredentialID)
	b = bin.AppendU64(b, uint64(v.Threshold))
	b = bin.AppendU64(b, v.Flags)
	b = v.Target.Append(b)
	b = v.SignedBy.Append(b)
	return append(b, byte(v.CredentialType))
}

// Append appends the encoding.
func (v *Revocation) Append(b []byte) []byte {
	b = appendSignature(v.appendFields(b), &v.Signature)
	return appendExt(b, v.Ext)
}

func (v *Revocation) forSign() []byte {
	b := append(v.appendFields(append([]byte{}, forSignGuard...)), 0, 0)
	return append(b, forSignGuard...)
}

// ParseRevocation reads a Revocation at the start of b and returns it with its length.
func ParseRevocation(b []byte) (*Revocation, int, error) {
	r := bin.Reader{B: b}
	r.U32()
	v := &Revocation{ID: r.U32(), NetworkID: ztaddr.NetworkID(r.U64())}
	r.U32()
	v.CredentialID, v.Threshold, v.Flags = r.U32(), int64(r.U64()), r.U64()
	v.Target, v.SignedBy, v.CredentialType = r.Address(), r.Address(), CredentialType(r.U8())
	v.Signature = readSignature(&r)
	v.Ext = readExt(&r)
	if err := finish(&r, "revocation"); err != nil {
		return nil, 0, err
	}
	return v, r.Off, nil
}

// Sign signs the revocation as the network's controller.
func (v *Revocation) Sign(controller *identity.Identity) (err error) {
	v.SignedBy = controller.Address()
	v.Signature, err = controller.Sign(v.forSign())
	return err
}

// Verify checks the controller's signature.
func (v *Revocation) Verify(controller *identity.Identity) error {
	if err := checkSigner(v.NetworkID, v.SignedBy, controller); err != nil {
		return err
	}
	return verifySig(controller, v.forSign(), &v.Signature)
}
