package netconf

import (
	"errors"
	"fmt"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// CredentialType identifies a credential kind (revocations name the kind they revoke).
type CredentialType uint8

// Credential types.
const (
	CredentialNull       CredentialType = 0
	CredentialCOM        CredentialType = 1
	CredentialCapability CredentialType = 2
	CredentialTag        CredentialType = 3
	CredentialCOO        CredentialType = 4
	CredentialRevocation CredentialType = 6
)

// Errors from credential decoding and checks.
var (
	ErrBadCredential = errors.New("bad credential")
	ErrWrongSigner   = errors.New("credential not signed by the network's controller")
	ErrUnsigned      = errors.New("credential is not signed")
)

// sigTypeEd25519 marks a 96-byte C25519 signature in credential encodings.
const sigTypeEd25519 = 1

// forSignGuard frames the bytes a credential signature covers.
var forSignGuard = []byte{0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f}

// appendSignature appends [1]=1 [2]=96 [96] signature.
func appendSignature(b []byte, sig *identity.Signature) []byte {
	b = append(b, sigTypeEd25519, 0, identity.SignatureSize)
	return append(b, sig[:]...)
}

// readSignature reads a signature block. Only type 1 (96-byte C25519) exists.
func readSignature(r *bin.Reader) (sig identity.Signature) {
	t, n := r.U8(), r.U16()
	if r.Err == nil && (t != sigTypeEd25519 || n != identity.SignatureSize) {
		r.Fail(fmt.Errorf("%w: signature type %d length %d", ErrBadCredential, t, n))
	}
	copy(sig[:], r.Take(identity.SignatureSize))
	return sig
}

// readExt reads the trailing [2] length + extension bytes every credential ends with.
func readExt(r *bin.Reader) []byte {
	n := r.U16()
	if n == 0 {
		return nil
	}
	return r.Copy(int(n))
}

func appendExt(b []byte, ext []byte) []byte {
	b = bin.AppendU16(b, uint16(len(ext)))
	return append(b, ext...)
}

// checkSigner verifies that signedBy is the controller of nwid and is signer.
func checkSigner(nwid ztaddr.NetworkID, signedBy ztaddr.Address, signer *identity.Identity) error {
	if signedBy == 0 {
		return ErrUnsigned
	}
	if signedBy != nwid.Controller() || signer.Address() != signedBy {
		return fmt.Errorf("%w: signed by %s, network %s", ErrWrongSigner, signedBy, nwid)
	}
	return nil
}

func verifySig(signer *identity.Identity, msg []byte, sig *identity.Signature) error {
	if !signer.Verify(msg, sig[:]) {
		return identity.ErrBadSignature
	}
	return nil
}

func finish(r *bin.Reader, what string) error {
	if r.Err != nil {
		if errors.Is(r.Err, ErrBadCredential) {
			return fmt.Errorf("%s: %w", what, r.Err)
		}
		return fmt.Errorf("%w: %s: %v", ErrBadCredential, what, r.Err)
	}
	return nil
}
