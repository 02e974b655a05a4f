package zt

import (
	"net/netip"
	"testing"
)

func TestPeerPaths(t *testing.T) {
	ids := testIdentities(t)
	p, err := newPeer(ids[0], ids[1])
	if err != nil {
		t.Fatal(err)
	}
	s := &socket{}
	ep := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), port) }
	const now = 10_000_000

	if p.bestPath(now) != nil {
		t.Fatal("a path out of nothing")
	}
	old, isNew := p.learnPath(s, ep(1), now-pathAlive-1000) // heard from, but not lately
	if !isNew {
		t.Fatal("first path not new")
	}
	if p.bestPath(now) != old || p.alivePath(now) != nil {
		t.Fatal("a quiet path is usable but not alive")
	}
	fresh, _ := p.learnPath(s, ep(2), now)
	if p.bestPath(now) != fresh || p.alivePath(now) != fresh {
		t.Fatal("the recently heard path is not preferred")
	}
	if again, isNew := p.learnPath(s, ep(2), now+5); isNew || again != fresh || fresh.lastIn.Load() != now+5 {
		t.Fatal("relearning a path made a new one")
	}
	// A path not heard from for the expiration period goes.
	if left := p.expirePaths(now - pathAlive - 1000 + pathExpiration); len(left) != 1 || left[0] != fresh {
		t.Fatalf("after expiry: %d paths", len(left))
	}
	// The table is bounded; a dead path to the same IP is replaced first, else the oldest.
	for i := range maxPeerPaths + 3 {
		p.learnPath(s, ep(uint16(100+i)), now+int64(i))
	}
	if len(p.paths) != maxPeerPaths {
		t.Fatalf("%d paths, want at most %d", len(p.paths), maxPeerPaths)
	}
	// Rate limit on confirming unknown addresses: one HELLO per second per address.
	if !p.shouldTry(ep(9), now) || p.shouldTry(ep(9), now+500) || !p.shouldTry(ep(9), now+1500) {
		t.Fatal("shouldTry is not one per second")
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	for i := range 3 {
		if !w.allow(1000, 1000, 3) {
			t.Fatalf("event %d refused", i)
		}
	}
	if w.allow(1500, 1000, 3) {
		t.Fatal("fourth event in the window allowed")
	}
	if !w.allow(2000, 1000, 3) {
		t.Fatal("new window refused")
	}
}
