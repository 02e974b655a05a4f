package zt

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// path is a physical route to a peer: one of our sockets and the peer's UDP endpoint.
type path struct {
	sock *socket
	addr netip.AddrPort // unmapped

	lastIn, lastOut atomic.Int64 // ms
	lastHello       atomic.Int64 // last full HELLO sent on it
	lastEchoReply   atomic.Int64 // rate-limits answers to ECHO
}

func newPath(s *socket, addr netip.AddrPort) *path {
	return &path{sock: s, addr: addr}
}

// Path timing (node/Constants.hpp).
const (
	pathHeartbeat  = 14000 // ms without traffic before a keepalive goes out
	pathAlive      = 30000 // ms since the last receipt for a path to be preferred
	pathExpiration = 4*60000 + 3000
	peerPingPeriod = 60000 // full HELLO on every path this often
	echoReplyGap   = 166   // ms between answered ECHOs per path
)

func (p *path) alive(now int64) bool   { return now-p.lastIn.Load() < pathAlive }
func (p *path) expired(now int64) bool { return now-p.lastIn.Load() >= pathExpiration }

func (p *path) send(b []byte, now int64) error {
	p.lastOut.Store(now)
	return p.sock.writeTo(b, p.addr)
}

// PathInfo describes one physical path to a peer.
type PathInfo struct {
	Address     netip.AddrPort
	LastSend    time.Time
	LastReceive time.Time
	Active      bool // heard from recently
	Preferred   bool // the one traffic goes out on
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
