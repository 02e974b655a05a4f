// Package identity implements ZeroTier 1.x type-0 identities: a C25519 key pair (X25519 for key
// agreement, Ed25519 for signatures) whose 40-bit address is derived from the public key by a
// memory-hard hash. It covers generation, validation, the string and binary forms, key
// agreement and ZeroTier's 96-byte signatures.
package identity

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Binary sizes of an identity.
const (
	PublicBinarySize = ztaddr.AddressLength + 1 + PublicKeySize + 1 // 71
	SecretBinarySize = PublicBinarySize + PrivateKeySize            // 135
)

// Identity is a node's address and keys, optionally with the private half.
type Identity struct {
	address ztaddr.Address
	public  PublicKey
	private *PrivateKey
	signer  ed25519.PrivateKey // expanded Ed25519 key, cached for signing
}

// Errors returned for malformed or invalid identities.
var (
	ErrInvalid    = errors.New("invalid identity")
	ErrNoPrivate  = errors.New("identity has no private key")
	ErrHashFailed = errors.New("identity fails the address-derivation check")
)

// New builds an identity from its parts. It checks only the form, not that address derives from
// the key (see Validate). priv may be nil.
func New(addr ztaddr.Address, pub PublicKey, priv *PrivateKey) (*Identity, error) {
	if addr.IsReserved() || addr>>40 != 0 {
		return nil, fmt.Errorf("%w: address %s is reserved", ErrInvalid, addr)
	}
	id := &Identity{address: addr, public: pub}
	if priv != nil {
		p := *priv
		id.private = &p
		id.signer = ed25519.NewKeyFromSeed(p[32:])
	}
	return id, nil
}

// Address is the node's 40-bit address.
func (id *Identity) Address() ztaddr.Address { return id.address }

// PublicKey is the 64-byte public key.
func (id *Identity) PublicKey() *PublicKey { return &id.public }

// PrivateKey is the private key, or nil for a public-only identity.
func (id *Identity) PrivateKey() *PrivateKey { return id.private }

// HasPrivate reports whether the identity can sign and agree on keys.
func (id *Identity) HasPrivate() bool { return id.private != nil }

// Public returns a copy without the private key.
func (id *Identity) Public() *Identity { return &Identity{address: id.address, public: id.public} }

// Equal reports whether both identities have the same address and public key.
func (id *Identity) Equal(o *Identity) bool {
	return id.address == o.address && id.public == o.public
}

// Validate runs the memory-hard check (about 10 ms): the hash of the public key must start with
// a byte below 17 and end with the address.
func (id *Identity) Validate() error {
	if id.address.IsReserved() {
		return fmt.Errorf("%w: address %s is reserved", ErrInvalid, id.address)
	}
	d := memoryHardHash(&id.public)
	if d[0] >= hashcashLimit || ztaddr.AddressFrom(d[59:]) != id.address {
		return fmt.Errorf("%s: %w", id.address, ErrHashFailed)
	}
	return nil
}

// Sign signs msg. It fails only for a public-only identity.
func (id *Identity) Sign(msg []byte) (Signature, error) {
	if id.private == nil {
		return Signature{}, ErrNoPrivate
	}
	return signWith(id.signer, msg), nil
}

// Verify reports whether sig (exactly 96 bytes) is this identity's signature of msg.
func (id *Identity) Verify(msg, sig []byte) bool { return id.public.Verify(msg, sig) }

// Agree computes the 48-byte key this identity shares with peer.
func (id *Identity) Agree(peer *Identity) (SharedKey, error) {
	if id.private == nil {
		return SharedKey{}, ErrNoPrivate
	}
	return id.private.Agree(&peer.public)
}

// PublicKeyHash is SHA-384(address ‖ public key), which certificates of membership carry.
func (id *Identity) PublicKeyHash() [48]byte {
	var b [ztaddr.AddressLength + PublicKeySize]byte
	id.address.Put(b[:])
	copy(b[5:], id.public[:])
	return sha512.Sum384(b[:])
}

// String is the public string form "address:0:public-hex" (the identity.public file).
func (id *Identity) String() string {
	return id.address.String() + ":0:" + hex.EncodeToString(id.public[:])
}

// SecretString is the form with the private key, "address:0:public-hex:private-hex" (the
// identity.secret file); for a public-only identity it equals String.
func (id *Identity) SecretString() string {
	if id.private == nil {
		return id.String()
	}
	return id.String() + ":" + hex.EncodeToString(id.private[:])
}

// Parse reads the string form, with or without the private key. Surrounding white space is
// ignored; hex is case-insensitive.
func Parse(s string) (*Identity, error) {
	fields := strings.Split(strings.TrimSpace(s), ":")
	if len(fields) < 3 || len(fields) > 4 {
		return nil, fmt.Errorf("%w: want address:0:public[:private]", ErrInvalid)
	}
	addr, err := ztaddr.ParseAddress(fields[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if fields[1] != "0" {
		return nil, fmt.Errorf("%w: unsupported identity type %q", ErrInvalid, fields[1])
	}
	var pub PublicKey
	if err := decodeHex(pub[:], fields[2]); err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrInvalid, err)
	}
	var priv *PrivateKey
	if len(fields) == 4 {
		priv = new(PrivateKey)
		if err := decodeHex(priv[:], fields[3]); err != nil {
			return nil, fmt.Errorf("%w: private key: %v", ErrInvalid, err)
		}
	}
	return New(addr, pub, priv)
}

func decodeHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("want %d hex digits, have %d", 2*len(dst), len(s))
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// AppendBinary appends the binary form (71 bytes, or 135 with the private key when withPrivate
// is set and the identity has one).
func (id *Identity) AppendBinary(b []byte, withPrivate bool) []byte {
	b = id.address.Append(b)
	b = append(b, 0)
	b = append(b, id.public[:]...)
	if withPrivate && id.private != nil {
		b = append(b, PrivateKeySize)
		return append(b, id.private[:]...)
	}
	return append(b, 0)
}

// Unmarshal reads the binary form at the start of b and returns the identity and the number of
// bytes it used.
func Unmarshal(b []byte) (*Identity, int, error) {
	if len(b) < PublicBinarySize {
		return nil, 0, fmt.Errorf("%w: %d bytes, want at least %d", ErrInvalid, len(b), PublicBinarySize)
	}
	if b[5] != 0 {
		return nil, 0, fmt.Errorf("%w: unsupported identity type %d", ErrInvalid, b[5])
	}
	var pub PublicKey
	copy(pub[:], b[6:70])
	var priv *PrivateKey
	n := PublicBinarySize
	switch b[70] {
	case 0:
	case PrivateKeySize:
		if len(b) < SecretBinarySize {
			return nil, 0, fmt.Errorf("%w: truncated private key", ErrInvalid)
		}
		priv = (*PrivateKey)(b[71:SecretBinarySize])
		n = SecretBinarySize
	default:
		return nil, 0, fmt.Errorf("%w: private key length %d", ErrInvalid, b[70])
	}
	id, err := New(ztaddr.AddressFrom(b), pub, priv)
	if err != nil {
		return nil, 0, err
	}
	return id, n, nil
}
