package zt

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// A node becomes a root by being one in its planet. Config.RootEndpoints makes a node its
// own planet's only root: on first start it creates a planet naming itself at those
// endpoints, signed with a world key it keeps in its home (worldKeyFile), and writes it to
// the home's planet file, which other nodes (ours with Config.Planet or a planet file in
// their home, and zerotier-one with the file in its home) load to use this root. If the
// endpoints change, a newer version of the planet is signed with the same key.

// worldKeyFile holds the key that signs the planet: hex public key ":" hex private key.
const worldKeyFile = "world.secret"

// ensureRootPlanet returns the home's planet if it names id as its only root at exactly
// endpoints, else makes (or updates) one and saves it.
func (h home) ensureRootPlanet(id *identity.Identity, endpoints []netip.AddrPort) (*world.World, error) {
	if len(endpoints) == 0 || len(endpoints) > world.MaxEndpointsPerRoot {
		return nil, fmt.Errorf("root planet: %d endpoints (want 1 to %d)", len(endpoints), world.MaxEndpointsPerRoot)
	}
	pub, priv, err := h.worldKey()
	if err != nil {
		return nil, err
	}
	var eps []ztaddr.InetAddress
	for _, ep := range endpoints {
		if !ep.Addr().IsValid() || ep.Addr().IsUnspecified() || ep.Port() == 0 {
			return nil, fmt.Errorf("root planet: endpoint %s is not an address and port", ep)
		}
		eps = append(eps, ztaddr.InetAddressOf(netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())))
	}
	var old *world.World
	if b, err := h.readOptional(planetFile); err != nil {
		return nil, err
	} else if b != nil {
		if old, _, err = world.Parse(b); err != nil {
			return nil, fmt.Errorf("%s: %w", h.path(planetFile), err)
		}
		if old.UpdatesMustBeSignedBy != pub {
			return nil, fmt.Errorf("%s is not signed by the world key in %s: remove it to make a new planet",
				h.path(planetFile), h.path(worldKeyFile))
		}
		if len(old.Roots) == 1 && old.Roots[0].Identity.Equal(id.Public()) &&
			slices.EqualFunc(old.Roots[0].StableEndpoints, eps, func(a, b ztaddr.InetAddress) bool { return a.AddrPort == b.AddrPort }) {
			return old, nil
		}
	}
	worldID := rand.Uint64()
	for worldID == world.EarthID || worldID == 227883110 || worldID == 0 {
		worldID = rand.Uint64()
	}
	ts := uint64(time.Now().UnixMilli())
	if old != nil {
		worldID, ts = old.ID, max(ts, old.Timestamp+1)
	}
	w, err := world.New(world.TypePlanet, worldID, ts, pub, []world.Root{{Identity: id.Public(), StableEndpoints: eps}}, &priv)
	if err != nil {
		return nil, err
	}
	if err := h.write(w.Bytes(), 0o644, planetFile); err != nil {
		return nil, err
	}
	return w, nil
}

// worldKey reads the planet-signing key pair, creating it on first use.
func (h home) worldKey() (identity.PublicKey, identity.PrivateKey, error) {
	var pub identity.PublicKey
	var priv identity.PrivateKey
	b, err := h.readOptional(worldKeyFile)
	if err != nil {
		return pub, priv, err
	}
	if b == nil {
		if pub, priv, err = identity.GenerateKeyPair(); err != nil {
			return pub, priv, err
		}
		s := hex.EncodeToString(pub[:]) + ":" + hex.EncodeToString(priv[:])
		return pub, priv, h.write([]byte(s), 0o600, worldKeyFile)
	}
	p, s, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok || hex.DecodedLen(len(p)) != len(pub) || hex.DecodedLen(len(s)) != len(priv) {
		return pub, priv, fmt.Errorf("%s: %w", h.path(worldKeyFile), errBadWorldKey)
	}
	if _, err := hex.Decode(pub[:], []byte(p)); err != nil {
		return pub, priv, fmt.Errorf("%s: %w", h.path(worldKeyFile), errBadWorldKey)
	}
	if _, err := hex.Decode(priv[:], []byte(s)); err != nil {
		return pub, priv, fmt.Errorf("%s: %w", h.path(worldKeyFile), errBadWorldKey)
	}
	if derived, err := priv.Public(); err != nil || derived != pub {
		return pub, priv, fmt.Errorf("%s: %w: keys do not match", h.path(worldKeyFile), errBadWorldKey)
	}
	return pub, priv, nil
}

var errBadWorldKey = errors.New("bad world key")
