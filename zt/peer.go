package zt

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// maxPeerPaths bounds the physical paths kept per peer.
const maxPeerPaths = 8

// Peer roles, as zerotier-cli listpeers names them.
const (
	RoleLeaf   = "LEAF"
	RolePlanet = "PLANET"
	RoleMoon   = "MOON"
)

// peer is another node we know the identity of: its key, the software it runs and the
// physical paths that reach it.
type peer struct {
	id   *identity.Identity
	addr ztaddr.Address
	key  *wire.Key

	role atomic.Value // string: RoleLeaf, RolePlanet or RoleMoon

	mu     sync.Mutex
	paths  []*path
	stable []netip.AddrPort         // a root's endpoints from its world
	tried  map[netip.AddrPort]int64 // unknown physical addresses we recently HELLOed
	hints  []netip.AddrPort         // paths from the peer cache, to try once at start

	cachedPaths []netip.AddrPort // as last written to the peer cache
	cachedAt    int64

	version atomic.Uint64 // protocol<<48 | major<<40 | minor<<32 | revision; 0 = unknown
	latency atomic.Int64  // ms, -1 = unknown

	lastReceive     atomic.Int64 // anything authenticated
	lastNontrivial  atomic.Int64 // frames and config traffic: the peer is in use
	lastTrust       atomic.Int64 // a frame or credential that passed a network's gate
	lastPathPush    atomic.Int64 // PUSH_DIRECT_PATHS sent
	pathsIn         rateWindow   // PUSH_DIRECT_PATHS accepted
	credentialsIn   rateWindow   // NETWORK_CREDENTIALS accepted
	lastWhoisAnswer atomic.Int64
}

func newPeer(me, them *identity.Identity) (*peer, error) {
	k, err := me.Agree(them)
	if err != nil {
		return nil, fmt.Errorf("key agreement with %s: %w", them.Address(), err)
	}
	p := &peer{id: them.Public(), addr: them.Address(), key: wire.NewKey(k), tried: map[netip.AddrPort]int64{}}
	p.role.Store(RoleLeaf)
	p.latency.Store(-1)
	return p, nil
}

func (p *peer) isRoot() bool { return p.role.Load().(string) != RoleLeaf }

func (p *peer) setVersion(proto, major, minor uint8, rev uint16) {
	p.version.Store(uint64(proto)<<48 | uint64(major)<<40 | uint64(minor)<<32 | uint64(rev))
}

func (p *peer) protocolVersion() uint8 { return uint8(p.version.Load() >> 48) }

// cipher is the suite for encrypted packets to this peer: AES-GMAC-SIV from protocol 12 on.
func (p *peer) cipher() wire.Cipher {
	if p.protocolVersion() >= 12 {
		return wire.CipherAESGMACSIV
	}
	return wire.CipherPoly1305Salsa2012
}

// bestPath is the path to send on: the most recently heard of the alive ones, else the most
// recently heard unexpired one (nil if none).
func (p *peer) bestPath(now int64) *path {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *path
	for _, x := range p.paths {
		switch {
		case x.expired(now):
		case best == nil:
			best = x
		case x.alive(now) && !best.alive(now), x.lastIn.Load() > best.lastIn.Load() && x.alive(now) == best.alive(now):
			best = x
		}
	}
	return best
}

// alivePath is the best path if it is alive.
func (p *peer) alivePath(now int64) *path {
	if x := p.bestPath(now); x != nil && x.alive(now) {
		return x
	}
	return nil
}

func (p *peer) findPath(s *socket, addr netip.AddrPort) *path {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range p.paths {
		if x.sock == s && x.addr == addr {
			return x
		}
	}
	return nil
}

// learnPath adds a path confirmed by an OK that arrived on it directly, replacing a dead
// path to the same IP or else the least recently heard one when the table is full.
func (p *peer) learnPath(s *socket, addr netip.AddrPort, now int64) (*path, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	replace := -1
	for i, x := range p.paths {
		if x.sock == s && x.addr == addr {
			x.lastIn.Store(now)
			return x, false
		}
		if x.sock == s && x.addr.Addr() == addr.Addr() && !x.alive(now) {
			replace = i
		}
	}
	np := newPath(s, addr)
	np.lastIn.Store(now)
	switch {
	case replace >= 0:
		p.paths[replace] = np
	case len(p.paths) < maxPeerPaths:
		p.paths = append(p.paths, np)
	default:
		oldest := 0
		for i, x := range p.paths {
			if x.lastIn.Load() < p.paths[oldest].lastIn.Load() {
				oldest = i
			}
		}
		p.paths[oldest] = np
	}
	return np, true
}

// shouldTry rate-limits HELLOs to a physical address we are not yet talking on (one per
// second per address).
func (p *peer) shouldTry(addr netip.AddrPort, now int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, t := range p.tried {
		if now-t > 1000 {
			delete(p.tried, a)
		}
	}
	if _, ok := p.tried[addr]; ok {
		return false
	}
	p.tried[addr] = now
	return true
}

// expirePaths drops paths not heard from for pathExpiration and returns those left.
func (p *peer) expirePaths(now int64) []*path {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.paths[:0]
	for _, x := range p.paths {
		if !x.expired(now) {
			kept = append(kept, x)
		}
	}
	clear(p.paths[len(kept):])
	p.paths = kept
	return append([]*path(nil), kept...)
}

func (p *peer) stableEndpoints() []netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stable
}

// PeerInfo describes a peer, like an entry of zerotier-cli listpeers.
type PeerInfo struct {
	Address ztaddr.Address
	// Version is the peer's software version ("1.14.1"), empty until it said.
	Version         string
	ProtocolVersion int
	Latency         time.Duration // -1 if unknown
	Role            string        // RoleLeaf, RolePlanet or RoleMoon
	Paths           []PathInfo
}

func (p *peer) info(now int64) PeerInfo {
	v := p.version.Load()
	pi := PeerInfo{Address: p.addr, ProtocolVersion: int(v >> 48), Latency: -1, Role: p.role.Load().(string)}
	if v != 0 {
		pi.Version = fmt.Sprintf("%d.%d.%d", uint8(v>>40), uint8(v>>32), uint16(v))
	}
	if l := p.latency.Load(); l >= 0 {
		pi.Latency = time.Duration(l) * time.Millisecond
	}
	best := p.bestPath(now)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range p.paths {
		pi.Paths = append(pi.Paths, PathInfo{Address: x.addr, LastSend: msTime(x.lastOut.Load()),
			LastReceive: msTime(x.lastIn.Load()), Active: x.alive(now), Preferred: x == best})
	}
	return pi
}

// rateWindow counts events in fixed time windows.
type rateWindow struct {
	mu           sync.Mutex
	start, count int64
}

// allow counts an event at now and reports whether it is within max per span ms.
func (w *rateWindow) allow(now, span, max int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now-w.start >= span {
		w.start, w.count = now, 0
	}
	if w.count >= max {
		return false
	}
	w.count++
	return true
}
