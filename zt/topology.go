package zt

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// errIdentityCollision: a known address came with a different key.
var errIdentityCollision = errors.New("identity collision")

// topology is what a node knows of the world: the planet and moons (whose roots are its
// upstreams) and every peer.
type topology struct {
	me *identity.Identity

	mu     sync.RWMutex
	peers  map[ztaddr.Address]*peer
	planet *world.World
	moons  map[uint64]*world.World
	roots  []*peer
	amRoot bool
}

func newTopology(me *identity.Identity) *topology {
	return &topology{me: me, peers: map[ztaddr.Address]*peer{}, moons: map[uint64]*world.World{}}
}

func (t *topology) peer(a ztaddr.Address) *peer {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.peers[a]
}

// addPeer returns the peer for id, creating it if new. A known address with another key is an
// identity collision.
func (t *topology) addPeer(id *identity.Identity) (*peer, bool, error) {
	if p := t.peer(id.Address()); p != nil {
		if !p.id.Equal(id.Public()) {
			return nil, false, fmt.Errorf("%s: %w", id.Address(), errIdentityCollision)
		}
		return p, false, nil
	}
	np, err := newPeer(t.me, id)
	if err != nil {
		return nil, false, err
	}
	p := t.insertPeer(np)
	return p, p == np, nil
}

// insertPeer adds p unless a peer with its address exists, and returns the one kept.
func (t *topology) insertPeer(p *peer) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.peers[p.addr]; old != nil {
		return old
	}
	t.peers[p.addr] = p
	return p
}

func (t *topology) removePeer(a ztaddr.Address) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[a]; p != nil && !p.isRoot() {
		delete(t.peers, a)
	}
}

func (t *topology) allPeers() []*peer {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ps := make([]*peer, 0, len(t.peers))
	for _, p := range t.peers {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].addr < ps[j].addr })
	return ps
}

func (t *topology) getPlanet() *world.World {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.planet
}

func (t *topology) getMoons() []*world.World {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ms := make([]*world.World, 0, len(t.moons))
	for _, m := range t.moons {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return ms
}

// offerPlanet installs w if there is no planet yet or w is a valid update of it.
func (t *topology) offerPlanet(w *world.World) (bool, error) {
	if w.Type != world.TypePlanet {
		return false, fmt.Errorf("%w: world %d is not a planet", world.ErrBadWorld, w.ID)
	}
	t.mu.Lock()
	if t.planet != nil && !t.planet.ShouldBeReplacedBy(w) {
		t.mu.Unlock()
		return false, nil
	}
	t.planet = w
	t.mu.Unlock()
	return true, t.rebuildRoots()
}

// offerMoon installs a moon if new or a valid update of the one held.
func (t *topology) offerMoon(w *world.World) (bool, error) {
	if w.Type != world.TypeMoon {
		return false, fmt.Errorf("%w: world %d is not a moon", world.ErrBadWorld, w.ID)
	}
	t.mu.Lock()
	if old := t.moons[w.ID]; old != nil && !old.ShouldBeReplacedBy(w) {
		t.mu.Unlock()
		return false, nil
	}
	t.moons[w.ID] = w
	t.mu.Unlock()
	return true, t.rebuildRoots()
}

// rebuildRoots makes every root of the planet and moons a peer with its role and stable
// endpoints, and notes whether we are one of them.
func (t *topology) rebuildRoots() error {
	type rootOf struct {
		r    world.Root
		role string
	}
	var rs []rootOf
	t.mu.RLock()
	if t.planet != nil {
		for _, r := range t.planet.Roots {
			rs = append(rs, rootOf{r, RolePlanet})
		}
	}
	for _, m := range t.moons {
		for _, r := range m.Roots {
			rs = append(rs, rootOf{r, RoleMoon})
		}
	}
	old := t.roots
	t.mu.RUnlock()

	var roots []*peer
	amRoot := false
	for _, ro := range rs {
		if ro.r.Identity.Address() == t.me.Address() {
			amRoot = true
			continue
		}
		p, _, err := t.addPeer(ro.r.Identity)
		if err != nil {
			return fmt.Errorf("root %s: %w", ro.r.Identity.Address(), err)
		}
		var eps []netip.AddrPort
		for _, e := range ro.r.StableEndpoints {
			if e.AddrPort.IsValid() {
				eps = append(eps, netip.AddrPortFrom(e.AddrPort.Addr().Unmap(), e.AddrPort.Port()))
			}
		}
		p.mu.Lock()
		p.stable = eps
		p.mu.Unlock()
		p.role.Store(ro.role)
		roots = append(roots, p)
	}
	for _, p := range old {
		if !containsPeer(roots, p) {
			p.role.Store(RoleLeaf)
		}
	}
	t.mu.Lock()
	t.roots, t.amRoot = roots, amRoot
	t.mu.Unlock()
	return nil
}

func containsPeer(ps []*peer, p *peer) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func (t *topology) rootPeers() []*peer {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.roots
}

func (t *topology) isRoot() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.amRoot
}

// bestRoot is the root to relay through and ask WHOIS: among those with an alive path, the
// one with the lowest latency (nil if none is reachable).
func (t *topology) bestRoot(now int64) (*peer, *path) {
	var best *peer
	var bestPath *path
	for _, r := range t.rootPeers() {
		x := r.alivePath(now)
		if x == nil {
			continue
		}
		if best == nil || latencyLess(r, best) {
			best, bestPath = r, x
		}
	}
	return best, bestPath
}

func latencyLess(a, b *peer) bool {
	la, lb := a.latency.Load(), b.latency.Load()
	if la < 0 {
		return false
	}
	return lb < 0 || la < lb
}
