package zt

import (
	"time"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Periods of the node's background work (ms).
const (
	peerActivityTimeout = 500000  // a peer is "in use" this long after real traffic
	peerForgetAfter     = 3600000 // an idle leaf without paths is forgotten
)

// timerLoop runs the node's periodic work until Close.
func (n *Node) timerLoop() {
	defer n.wg.Done()
	tk := time.NewTicker(n.t.tick)
	defer tk.Stop()
	var lastPing, lastHousekeeping int64
	n.probeCachedPaths(n.now())
	for {
		now := n.now()
		n.retryWhois(now, false)
		n.flushQueue()
		if now-lastPing >= n.t.pingCheck {
			lastPing = now
			n.pingCheck(now)
		}
		for _, nw := range n.Networks() {
			nw.timers(now)
		}
		if now-lastHousekeeping >= n.t.housekeeping {
			if lastHousekeeping != 0 {
				n.housekeeping(now)
			}
			lastHousekeeping = now
		}
		select {
		case <-n.done:
			return
		case <-tk.C:
		}
	}
}

// retryWhois re-asks about unknown addresses (all at once if now is true) and gives up on
// them after the queue timeout.
func (n *Node) retryWhois(now int64, all bool) {
	var ask []ztaddr.Address
	n.whoisMu.Lock()
	for a, w := range n.whois {
		switch {
		case now-w.since > n.t.queueTimeout:
			for range w.parked {
				n.stats.drop(dropUnknownPeer)
			}
			n.parked -= len(w.parked)
			delete(n.whois, a)
		case all || now-w.asked >= n.t.whoisRetry:
			w.asked = now
			ask = append(ask, a)
		}
	}
	n.whoisMu.Unlock()
	for _, a := range ask {
		n.sendWhois(a)
	}
}

// pingCheck keeps paths alive: roots are HELLOed at their stable endpoints until they
// answer; the paths of roots and of peers in use get a HELLO every minute and an ECHO when
// quiet for the heartbeat period; dead paths expire.
func (n *Node) pingCheck(now int64) {
	for _, pr := range n.topo.allPeers() {
		paths := pr.expirePaths(now)
		switch {
		case pr.isRoot():
			if pr.alivePath(now) == nil {
				for _, ep := range pr.stableEndpoints() {
					if n.usableAddress(ep) {
						n.sendHello(pr, n.socketFor(ep.Addr()), ep, now)
					}
				}
			}
		case now-pr.lastNontrivial.Load() >= peerActivityTimeout:
			continue
		}
		n.keepalive(pr, paths, now)
	}
	if !n.topo.isRoot() && n.online.Load() && now-n.lastRootIn.Load() > rootActivityTimeout {
		n.online.Store(false)
		n.log.Info("offline: no root heard from recently")
	}
}

func (n *Node) keepalive(pr *peer, paths []*path, now int64) {
	for _, x := range paths {
		switch {
		case now-x.lastHello.Load() >= peerPingPeriod:
			n.sendHello(pr, x.sock, x.addr, now)
		case now-x.lastOut.Load() >= pathHeartbeat || now-x.lastIn.Load() >= pathHeartbeat:
			n.contact(pr, x.addr, false, now)
		}
	}
}

// housekeeping saves the peer cache and forgets what is stale.
func (n *Node) housekeeping(now int64) {
	n.savePeers(now)
	for _, pr := range n.topo.allPeers() {
		if !pr.isRoot() && now-pr.lastReceive.Load() > peerForgetAfter && pr.bestPath(now) == nil {
			n.topo.removePeer(pr.addr)
		}
	}
	n.mcast.expire(now)
	for _, nw := range n.Networks() {
		nw.expireMembers(now)
	}
	n.unitesMu.Lock()
	for k, u := range n.unites {
		if now-u.at > minUniteInterval {
			delete(n.unites, k)
		}
	}
	n.unitesMu.Unlock()
}
