package zt

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// The peer cache (peers.d/<address>.peer) lets a restarted node talk to peers without asking
// a root who they are, and try their last known paths at once. Its format is ours
// (zerotier-one's is internal too): [1] version 1, the peer's public identity (71 bytes),
// [8] time saved (ms), [1] path count ≤ 8, then that many InetAddresses.

const (
	peerCacheVersion = 1
	peerCacheMaxAge  = 30 * 24 * 3600 * 1000
	peerCacheRefresh = 24 * 3600 * 1000
)

var errBadPeerCache = errors.New("bad peer cache entry")

type cachedPeer struct {
	id    *identity.Identity
	saved int64
	paths []netip.AddrPort
}

func (c *cachedPeer) append(b []byte) []byte {
	b = append(b, peerCacheVersion)
	b = c.id.AppendBinary(b, false)
	b = bin.AppendU64(b, uint64(c.saved))
	b = append(b, byte(len(c.paths)))
	for _, p := range c.paths {
		b = ztaddr.InetAddressOf(p).Append(b)
	}
	return b
}

func parseCachedPeer(b []byte) (*cachedPeer, error) {
	if len(b) == 0 || b[0] != peerCacheVersion {
		return nil, fmt.Errorf("%w: version", errBadPeerCache)
	}
	id, k, err := identity.Unmarshal(b[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadPeerCache, err)
	}
	if id.HasPrivate() {
		return nil, fmt.Errorf("%w: holds a private key", errBadPeerCache)
	}
	r := bin.Reader{B: b, Off: 1 + k}
	c := &cachedPeer{id: id, saved: int64(r.U64())}
	n := int(r.U8())
	if n > maxPeerPaths {
		return nil, fmt.Errorf("%w: %d paths", errBadPeerCache, n)
	}
	for range n {
		a := r.InetAddress()
		if r.Err == nil && a.AddrPort.IsValid() {
			c.paths = append(c.paths, a.AddrPort)
		}
	}
	if r.Err == nil && r.Len() != 0 {
		r.Fail(fmt.Errorf("%d trailing bytes", r.Len()))
	}
	if r.Err != nil {
		return nil, fmt.Errorf("%w: %v", errBadPeerCache, r.Err)
	}
	return c, nil
}

// loadPeers reads the peer cache. Broken or stale entries are deleted.
func (n *Node) loadPeers() {
	names, err := n.home.list(peersDir, ".peer")
	if err != nil {
		n.log.Warn("reading peer cache", "err", err)
		return
	}
	now := n.now()
	for _, name := range names {
		b, err := n.home.readOptional(peersDir, name)
		if err != nil {
			continue
		}
		c, err := parseCachedPeer(b)
		if err == nil && c.id.Address().String() != strings.TrimSuffix(name, ".peer") {
			err = fmt.Errorf("%w: file name", errBadPeerCache)
		}
		if err == nil && now-c.saved > peerCacheMaxAge {
			err = errors.New("stale")
		}
		if err == nil && c.id.Address() == n.addr {
			err = errors.New("ourselves")
		}
		if err != nil {
			n.log.Debug("dropping peer cache entry", "file", name, "err", err)
			_ = n.home.remove(peersDir, name)
			continue
		}
		pr, _, err := n.topo.addPeer(c.id)
		if err != nil {
			continue
		}
		pr.mu.Lock()
		pr.hints = c.paths
		pr.mu.Unlock()
	}
}

// savePeers writes the cache entries of peers heard from since the start.
func (n *Node) savePeers(now int64) {
	for _, pr := range n.topo.allPeers() {
		if pr.lastReceive.Load() == 0 {
			continue
		}
		c := &cachedPeer{id: pr.id, saved: now}
		for _, x := range pr.expirePaths(now) {
			c.paths = append(c.paths, x.addr)
		}
		// Rewrite an entry when its paths changed, else once a day (its age matters).
		pr.mu.Lock()
		same := slices.Equal(pr.cachedPaths, c.paths) && now-pr.cachedAt < peerCacheRefresh
		pr.cachedPaths, pr.cachedAt = c.paths, now
		pr.mu.Unlock()
		if same {
			continue
		}
		if err := n.home.write(c.append(nil), 0o600, peersDir, peerFile(pr.addr)); err != nil {
			n.log.Debug("saving peer", "peer", pr.addr.String(), "err", err)
		}
	}
}

// probeCachedPaths HELLOs the paths peers had when the cache was written.
func (n *Node) probeCachedPaths(now int64) {
	for _, pr := range n.topo.allPeers() {
		pr.mu.Lock()
		hints := pr.hints
		pr.hints = nil
		pr.mu.Unlock()
		for _, ep := range hints {
			if n.usableAddress(ep) {
				n.sendHello(pr, n.socketFor(ep.Addr()), ep, now)
			}
		}
	}
}
