package netconf

import (
	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Tag is a signed (id, value) pair the controller assigns to a member, matched by tag rules.
type Tag struct {
	NetworkID ztaddr.NetworkID
	Timestamp int64
	ID, Value uint32
	IssuedTo  ztaddr.Address
	SignedBy  ztaddr.Address
	Signature identity.Signature
	Ext       []byte // extension fields (none defined)
}

func (t *Tag) appendFields(b []byte) []byte {
	b = bin.AppendU64(b, uint64(t.NetworkID))
	b = bin.AppendU64(b, uint64(t.Timestamp))
	b = bin.AppendU32(b, t.ID)
	b = bin.AppendU32(b, t.Value)
	b = t.IssuedTo.Append(b)
	return t.SignedBy.Append(b)
}

// Append appends the encoding.
func (t *Tag) Append(b []byte) []byte {
	b = appendSignature(t.appendFields(b), &t.Signature)
	return appendExt(b, t.Ext)
}

func (t *Tag) forSign() []byte {
	b := append(t.appendFields(append([]byte{}, forSignGuard...)), 0, 0)
	return append(b, forSignGuard...)
}

// ParseTag reads a Tag at the start of b and returns it with its length.
func ParseTag(b []byte) (*Tag, int, error) {
	r := bin.Reader{B: b}
	t := &Tag{NetworkID: ztaddr.NetworkID(r.U64()), Timestamp: int64(r.U64()), ID: r.U32(), Value: r.U32(),
		IssuedTo: r.Address(), SignedBy: r.Address()}
	t.Signature = readSignature(&r)
	t.Ext = readExt(&r)
	if err := finish(&r, "tag"); err != nil {
		return nil, 0, err
	}
	return t, r.Off, nil
}

// Sign signs the tag as the network's controller.
func (t *Tag) Sign(controller *identity.Identity) (err error) {
	t.SignedBy = controller.Address()
	t.Signature, err = controller.Sign(t.forSign())
	return err
}

// Verify checks the controller's signature.
func (t *Tag) Verify(controller *identity.Identity) error {
	if err := checkSigner(t.NetworkID, t.SignedBy, controller); err != nil {
		return err
	}
	return verifySig(controller, t.forSign(), &t.Signature)
}
