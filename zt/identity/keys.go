package identity

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Sizes of ZeroTier's "C25519" key material and signatures.
const (
	PublicKeySize  = 64 // X25519 public ‖ Ed25519 public
	PrivateKeySize = 64 // X25519 private ‖ Ed25519 seed
	SignatureSize  = 96 // Ed25519 signature over H ‖ H, H = SHA-512(msg)[:32]
	SharedKeySize  = 48 // SHA-512(X25519 shared secret)[:48], the per-peer symmetric key
)

// PublicKey is a C25519 public key: the X25519 key-agreement half, then the Ed25519 half.
type PublicKey [PublicKeySize]byte

// PrivateKey is a C25519 private key: the raw X25519 scalar, then the Ed25519 seed.
type PrivateKey [PrivateKeySize]byte

// Signature is ZeroTier's 96-byte signature format.
type Signature [SignatureSize]byte

// SharedKey is the symmetric key two identities agree on.
type SharedKey [SharedKeySize]byte

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("bad signature")

// GenerateKeyPair returns a fresh random C25519 key pair (as used for world signing keys).
func GenerateKeyPair() (PublicKey, PrivateKey, error) {
	var priv PrivateKey
	if _, err := rand.Read(priv[:]); err != nil {
		return PublicKey{}, PrivateKey{}, err
	}
	pub, err := priv.Public()
	return pub, priv, err
}

// Public derives the public key.
func (k *PrivateKey) Public() (PublicKey, error) {
	var pub PublicKey
	dh, err := ecdh.X25519().NewPrivateKey(k[:32])
	if err != nil {
		return pub, err
	}
	copy(pub[:32], dh.PublicKey().Bytes())
	copy(pub[32:], ed25519.NewKeyFromSeed(k[32:]).Public().(ed25519.PublicKey))
	return pub, nil
}

// Sign signs msg with the Ed25519 half.
func (k *PrivateKey) Sign(msg []byte) Signature {
	return signWith(ed25519.NewKeyFromSeed(k[32:]), msg)
}

func signWith(key ed25519.PrivateKey, msg []byte) Signature {
	var sig Signature
	h := sha512.Sum512(msg)
	copy(sig[:64], ed25519.Sign(key, h[:32]))
	copy(sig[64:], h[:32])
	return sig
}

// Verify checks a signature of msg made with the private half of k. sig must be exactly 96 bytes.
func (k *PublicKey) Verify(msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	h := sha512.Sum512(msg)
	if subtle.ConstantTimeCompare(sig[64:], h[:32]) != 1 {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(k[32:]), h[:32], sig[:64])
}

// Agree computes the symmetric key shared by the owner of k and the owner of peer.
func (k *PrivateKey) Agree(peer *PublicKey) (SharedKey, error) {
	var key SharedKey
	dh, err := ecdh.X25519().NewPrivateKey(k[:32])
	if err != nil {
		return key, err
	}
	pub, err := ecdh.X25519().NewPublicKey(peer[:32])
	if err != nil {
		return key, err
	}
	raw, err := dh.ECDH(pub)
	if err != nil {
		return key, fmt.Errorf("key agreement: %w", err)
	}
	h := sha512.Sum512(raw)
	copy(key[:], h[:SharedKeySize])
	return key, nil
}
