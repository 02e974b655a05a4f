package zt

import (
	"maps"
	"sync"

	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// membership is what a network knows of another member: its certificate of membership (COM)
// and revocations, and when we last pushed our own credentials to it.
type membership struct {
	mu         sync.Mutex
	com        *netconf.COM // the newest valid COM issued to it
	tags       map[uint32]uint32
	revoked    bool
	revokedTo  int64 // its COMs with timestamps up to this are revoked
	gateGen    uint64
	gateValid  bool
	gateOK     bool
	pushedGen  uint64
	lastPush   int64
	forcedFrom int64 // start of the window counting pushes the member asked for
	forced     int   // pushes it asked for in that window
	lastNeedIt int64 // ERROR(NEED_MEMBERSHIP_CERTIFICATE) sent
	lastLikes  int64 // our subscriptions sent to it
	lastSeen   int64
}

const (
	// needCredentialsGap spaces our ERROR(NEED_MEMBERSHIP_CERTIFICATE) to a peer whose
	// frames we drop for want of its credentials: the frames wait (deferFrame) until its push
	// arrives, so a lost ask or a refused one (maxForcedPushes) delays them by this much.
	needCredentialsGap = 100 // ms
	// maxForcedPushes bounds the pushes a member can ask for per credentialsInWindow (each is
	// a few hundred bytes for its small ERROR). Routine pushes do not count: a member that
	// restarted (or restarts a few times in a row, as short-lived ztnc-run commands do) asks
	// at once, and our push to its previous process a moment ago must not make it wait.
	maxForcedPushes     = 10
	credentialsInWindow = 1000 // ms
	maxCredentialsIn    = 10   // NETWORK_CREDENTIALS accepted per peer per window
	maxMembers          = 65536
)

func (nw *Network) member(a ztaddr.Address) *membership {
	nw.membersMu.RLock()
	m := nw.members[a]
	nw.membersMu.RUnlock()
	if m != nil {
		return m
	}
	nw.membersMu.Lock()
	defer nw.membersMu.Unlock()
	if m = nw.members[a]; m == nil {
		if len(nw.members) >= maxMembers {
			clear(nw.members)
		}
		m = &membership{}
		nw.members[a] = m
	}
	return m
}

// gate decides whether pr may send us frames: on a public network anyone; on a private one
// only a peer whose COM (pushed to us with NETWORK_CREDENTIALS) agrees with ours and is not
// revoked. The verdict is cached until either COM changes.
func (nw *Network) gate(pr *peer, st *netState) bool {
	if !st.config.IsPrivate() {
		return true
	}
	m := nw.member(pr.addr)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gateValid && m.gateGen == st.gen {
		return m.gateOK
	}
	ok := m.com != nil && st.config.COM != nil && (!m.revoked || m.com.Timestamp() > m.revokedTo) &&
		st.config.COM.AgreesWith(m.com, pr.id)
	m.gateValid, m.gateGen, m.gateOK = true, st.gen, ok
	return ok
}

// admit runs the gate for a frame. A peer that fails it is asked (at most every
// needCredentialsGap) for its credentials with ERROR(NEED_MEMBERSHIP_CERTIFICATE); one that
// passes is trusted and gets our multicast subscriptions.
func (nw *Network) admit(in *inbound, st *netState) bool {
	n := nw.node
	m := nw.member(in.peer.addr)
	if nw.gate(in.peer, st) {
		m.mu.Lock()
		m.lastSeen = in.now
		likes := in.now-m.lastLikes >= n.t.likePeriod
		if likes {
			m.lastLikes = in.now
		}
		m.mu.Unlock()
		n.trusted(in.peer, in.hops, in.now)
		if likes {
			nw.pushCredentialsTo(in.peer.addr, false, in.now) // or it may ignore our LIKEs
			nw.sendLikes(in.peer.addr, nw.groups(st))
		}
		return true
	}
	if in.replay {
		nw.stats.drop(dropNotMember)
	} else {
		nw.deferFrame(in)
	}
	m.mu.Lock()
	ask := in.now-m.lastNeedIt >= needCredentialsGap
	if ask {
		m.lastNeedIt = in.now
	}
	m.mu.Unlock()
	if ask {
		nw.log.Debug("frame from a peer without valid membership", "peer", in.peer.addr.String())
		n.reply(in, wire.VerbError, wire.NewNetworkError(in.pkt.Verb(), in.pkt.ID(), wire.ErrorNeedMembershipCertificate, nw.id), 0)
	}
	return false
}

// pushCredentialsTo sends our credentials (COM, capabilities, tags, certificates of
// ownership) to a member before we send it frames: when our config changed since the last
// push or the push is old, or, with force (the member asked), at most once a second.
func (nw *Network) pushCredentialsTo(a ztaddr.Address, force bool, now int64) {
	st := nw.state.Load()
	if st == nil || st.credentials == nil {
		return
	}
	m := nw.member(a)
	m.mu.Lock()
	due := m.pushDue(force, st.gen, now, nw.node.t.credentials)
	m.mu.Unlock()
	if due {
		nw.node.sendMsg(a, wire.VerbNetworkCredentials, wire.Opaque(st.credentials), optCompress)
	}
}

// pushDue decides whether our credentials (of config generation gen) go to the member now,
// and records it if so: a push the member asked for (force) unless it has had
// maxForcedPushes in the current window; otherwise when the config changed since the last
// push, or the last is older than period. m.mu is held.
func (m *membership) pushDue(force bool, gen uint64, now, period int64) bool {
	var due bool
	if force {
		if now-m.forcedFrom >= credentialsInWindow || now < m.forcedFrom {
			m.forcedFrom, m.forced = now, 0
		}
		due = m.forced < maxForcedPushes
		if due {
			m.forced++
		}
	} else {
		due = m.pushedGen != gen || m.lastPush == 0 || now-m.lastPush >= period
	}
	if due {
		m.pushedGen, m.lastPush = gen, now
	}
	return due
}

func (nw *Network) pushCredentials(pr *peer, force bool, now int64) {
	nw.pushCredentialsTo(pr.addr, force, now)
}

// addCOM files a COM pushed to us under the member it was issued to, if the network's
// controller signed it and it is not older than the one held.
func (nw *Network) addCOM(com *netconf.COM, now int64) bool {
	ctrl := nw.controllerIdentity()
	if ctrl == nil {
		nw.node.askWhois(nw.id.Controller())
		return false
	}
	to := com.IssuedTo()
	if to.IsReserved() {
		nw.stats.drop(dropBadConfig)
		return false
	}
	m := nw.member(to)
	m.mu.Lock()
	have := m.com
	m.mu.Unlock()
	if have != nil && have.Signature == com.Signature {
		return true
	}
	if err := com.Verify(ctrl); err != nil {
		nw.stats.drop(dropBadConfig)
		nw.log.Debug("COM refused", "member", to.String(), "err", err)
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.com != nil && com.Timestamp() < m.com.Timestamp() {
		return false
	}
	m.com, m.gateValid, m.lastSeen = com, false, now
	return true
}

// addTag files a tag the controller issued to a member, for the tag rules.
func (nw *Network) addTag(t *netconf.Tag) {
	ctrl := nw.controllerIdentity()
	if ctrl == nil || t.Verify(ctrl) != nil {
		nw.stats.drop(dropBadConfig)
		return
	}
	m := nw.member(t.IssuedTo)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tags[t.ID]; ok || len(m.tags) < netconf.MaxTags {
		// Copy on write: the rules engine reads the map without the lock.
		tags := maps.Clone(m.tags)
		if tags == nil {
			tags = map[uint32]uint32{}
		}
		tags[t.ID] = t.Value
		m.tags = tags
	}
}

// addRevocation applies a controller's revocation of a member's COMs.
func (nw *Network) addRevocation(rev *netconf.Revocation) {
	ctrl := nw.controllerIdentity()
	if ctrl == nil || rev.CredentialType != netconf.CredentialCOM {
		return
	}
	if err := rev.Verify(ctrl); err != nil {
		nw.stats.drop(dropBadConfig)
		return
	}
	m := nw.member(rev.Target)
	m.mu.Lock()
	if !m.revoked || rev.Threshold > m.revokedTo {
		m.revoked, m.revokedTo, m.gateValid = true, rev.Threshold, false
	}
	m.mu.Unlock()
	nw.log.Debug("membership revoked", "member", rev.Target.String(), "threshold", rev.Threshold)
}

func (n *Node) onCredentials(in *inbound) {
	pr := in.peer
	if !pr.credentialsIn.allow(in.now, credentialsInWindow, maxCredentialsIn) {
		n.stats.drop(dropRateLimited)
		return
	}
	c, err := wire.ParseNetworkCredentials(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	accepted := false
	for _, com := range c.COMs {
		if nw := n.Network(com.NetworkID()); nw != nil && nw.addCOM(com, in.now) && com.IssuedTo() == pr.addr {
			accepted = true
		}
	}
	for _, t := range c.Tags {
		if nw := n.Network(t.NetworkID); nw != nil {
			nw.addTag(t)
		}
	}
	for _, rev := range c.Revocations {
		if nw := n.Network(rev.NetworkID); nw != nil {
			nw.addRevocation(rev)
		}
	}
	if accepted {
		n.trusted(pr, in.hops, in.now)
		for _, nw := range n.Networks() {
			nw.replayDeferred(pr.addr, in.now)
		}
	}
}

// deferredFrame is a frame from a peer that had not yet shown valid credentials. Credentials
// and frames can arrive out of order (one relayed, one direct), so like zerotier-one we keep
// such frames for a few seconds (timing.deferred) and try them again when the peer's
// credentials come. A deferred frame counts as a not-member drop only when it is really
// dropped: its replay fails the gate again, it expires, or newer ones push it out.
type deferredFrame struct {
	in inbound
}

const maxDeferred = 32

func (nw *Network) deferFrame(in *inbound) {
	c := *in
	c.pkt = append(wire.Packet(nil), in.pkt...)
	c.replay = true
	nw.deferMu.Lock()
	defer nw.deferMu.Unlock()
	if len(nw.deferred) >= maxDeferred {
		nw.deferred = nw.deferred[1:]
		nw.stats.drop(dropNotMember)
	}
	nw.deferred = append(nw.deferred, deferredFrame{c})
}

// replayDeferred hands the frames deferred from a peer back to the node, now that its
// credentials came.
func (nw *Network) replayDeferred(from ztaddr.Address, now int64) {
	for _, d := range nw.takeDeferred(now, func(d *deferredFrame) bool { return d.in.peer.addr == from }) {
		in := d.in
		in.now = now
		nw.node.handle(&in)
	}
}

// expireDeferred drops the deferred frames whose peer's credentials never came.
func (nw *Network) expireDeferred(now int64) { nw.takeDeferred(now, nil) }

// takeDeferred removes and returns the deferred frames that match, dropping expired ones.
func (nw *Network) takeDeferred(now int64, match func(*deferredFrame) bool) []deferredFrame {
	nw.deferMu.Lock()
	defer nw.deferMu.Unlock()
	if len(nw.deferred) == 0 {
		return nil
	}
	var taken []deferredFrame
	kept := nw.deferred[:0]
	for i := range nw.deferred {
		d := &nw.deferred[i]
		switch {
		case now-d.in.now > nw.node.t.deferred:
			nw.stats.drop(dropNotMember)
		case match != nil && match(d):
			taken = append(taken, *d)
		default:
			kept = append(kept, *d)
		}
	}
	clear(nw.deferred[len(kept):])
	nw.deferred = kept
	return taken
}

// expireMembers forgets members not heard from for a long time.
func (nw *Network) expireMembers(now int64) {
	nw.membersMu.Lock()
	defer nw.membersMu.Unlock()
	for a, m := range nw.members {
		m.mu.Lock()
		idle := now-m.lastSeen > memberExpiry && now-m.lastPush > memberExpiry && !m.revoked
		m.mu.Unlock()
		if idle {
			delete(nw.members, a)
		}
	}
}

const memberExpiry = 3600000
