// Package world implements ZeroTier worlds: the signed lists of root servers a node trusts. The
// planet (one per node; the default is ZeroTier's "Earth") names the roots every node uses;
// moons add user-run roots. It parses, serializes, signs and verifies them, and applies the
// replacement rule for updates.
package world

import (
	_ "embed"
	"errors"
	"fmt"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Type is the kind of world.
type Type uint8

// World types.
const (
	TypeNull   Type = 0
	TypePlanet Type = 1
	TypeMoon   Type = 127
)

// Limits of the format.
const (
	MaxRoots              = 4
	MaxEndpointsPerRoot   = 32
	MaxSerializedLength   = (1024+32*32)*4 + 64 + 96 + 128
	EarthID               = 149604618 // the default planet
	forSignHead, forSignT = 0x7f, 0xf7
)

// EarthPlanet is the default planet compiled into zerotier-one 1.14.1 (4 public roots).
//
//go:embed earth-planet.bin
var EarthPlanet []byte

// Root is one root server: its identity and the physical endpoints it can be reached at.
type Root struct {
	Identity        *identity.Identity
	StableEndpoints []ztaddr.InetAddress
}

// World is a planet or moon.
type World struct {
	Type      Type
	ID        uint64
	Timestamp uint64 // ms; a higher timestamp is a newer version
	// UpdatesMustBeSignedBy is the key that must sign the next version of this world.
	UpdatesMustBeSignedBy identity.PublicKey
	Signature             identity.Signature
	Roots                 []Root
	// MoonData is the dictionary a moon may carry (none is defined; 1.14 writes none).
	MoonData []byte
}

// ErrBadWorld is returned for malformed worlds.
var ErrBadWorld = errors.New("bad world")

// Parse reads a world at the start of b and returns it with its length.
func Parse(b []byte) (*World, int, error) {
	r := bin.Reader{B: b}
	w := &World{Type: Type(r.U8())}
	if r.Err == nil && w.Type != TypeNull && w.Type != TypePlanet && w.Type != TypeMoon {
		return nil, 0, fmt.Errorf("%w: type %d", ErrBadWorld, w.Type)
	}
	w.ID, w.Timestamp = r.U64(), r.U64()
	copy(w.UpdatesMustBeSignedBy[:], r.Take(identity.PublicKeySize))
	copy(w.Signature[:], r.Take(identity.SignatureSize))
	n := int(r.U8())
	if n > MaxRoots {
		return nil, 0, fmt.Errorf("%w: %d roots", ErrBadWorld, n)
	}
	for range n {
		if r.Err != nil {
			break
		}
		id, k, err := identity.Unmarshal(r.B[r.Off:])
		if err != nil {
			return nil, 0, fmt.Errorf("%w: root: %v", ErrBadWorld, err)
		}
		r.Off += k
		root := Root{Identity: id.Public()}
		ne := int(r.U8())
		if ne > MaxEndpointsPerRoot {
			return nil, 0, fmt.Errorf("%w: root %s has %d endpoints", ErrBadWorld, id.Address(), ne)
		}
		for range ne {
			root.StableEndpoints = append(root.StableEndpoints, r.InetAddress())
		}
		w.Roots = append(w.Roots, root)
	}
	if w.Type == TypeMoon {
		w.MoonData = r.Copy(int(r.U16()))
	}
	if r.Err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadWorld, r.Err)
	}
	return w, r.Off, nil
}

// Append appends the serialized world.
func (w *World) Append(b []byte) []byte { return w.appendTo(b, false) }

// Bytes is the serialized world.
func (w *World) Bytes() []byte { return w.Append(nil) }

func (w *World) appendTo(b []byte, forSign bool) []byte {
	if forSign {
		b = append(b, forSignHead, forSignHead, forSignHead, forSignHead, forSignHead, forSignHead, forSignHead, forSignHead)
	}
	b = append(b, byte(w.Type))
	b = bin.AppendU64(b, w.ID)
	b = bin.AppendU64(b, w.Timestamp)
	b = append(b, w.UpdatesMustBeSignedBy[:]...)
	if !forSign {
		b = append(b, w.Signature[:]...)
	}
	b = append(b, byte(len(w.Roots)))
	for _, r := range w.Roots {
		b = r.Identity.AppendBinary(b, false)
		b = append(b, byte(len(r.StableEndpoints)))
		for _, ep := range r.StableEndpoints {
			b = ep.Append(b)
		}
	}
	if w.Type == TypeMoon {
		b = bin.AppendU16(b, uint16(len(w.MoonData)))
		b = append(b, w.MoonData...)
	}
	if forSign {
		b = append(b, forSignT, forSignT, forSignT, forSignT, forSignT, forSignT, forSignT, forSignT)
	}
	return b
}

// New creates a world and signs it with signer (whose public half need not be
// updatesMustBeSignedBy: a world is signed by the key its predecessor names).
func New(t Type, id, timestamp uint64, updatesMustBeSignedBy identity.PublicKey, roots []Root, signer *identity.PrivateKey) (*World, error) {
	if len(roots) > MaxRoots {
		return nil, fmt.Errorf("%w: %d roots", ErrBadWorld, len(roots))
	}
	for _, r := range roots {
		if len(r.StableEndpoints) > MaxEndpointsPerRoot {
			return nil, fmt.Errorf("%w: root %s has %d endpoints", ErrBadWorld, r.Identity.Address(), len(r.StableEndpoints))
		}
	}
	w := &World{Type: t, ID: id, Timestamp: timestamp, UpdatesMustBeSignedBy: updatesMustBeSignedBy, Roots: roots}
	w.Signature = signer.Sign(w.appendTo(nil, true))
	return w, nil
}

// Verify checks the world's signature against key.
func (w *World) Verify(key *identity.PublicKey) error {
	if !key.Verify(w.appendTo(nil, true), w.Signature[:]) {
		return fmt.Errorf("world %d: %w", w.ID, identity.ErrBadSignature)
	}
	return nil
}

// ShouldBeReplacedBy applies zerotier-one's update rule: a null world is replaced by anything;
// otherwise only by a world of the same type and ID with a newer timestamp, signed with the key
// this world names.
func (w *World) ShouldBeReplacedBy(update *World) bool {
	if w.ID == 0 || w.Type == TypeNull {
		return true
	}
	return w.ID == update.ID && w.Type == update.Type && w.Timestamp < update.Timestamp &&
		update.Verify(&w.UpdatesMustBeSignedBy) == nil
}

// HasRoot reports whether a is one of the world's roots.
func (w *World) HasRoot(a ztaddr.Address) bool {
	for _, r := range w.Roots {
		if r.Identity.Address() == a {
			return true
		}
	}
	return false
}
