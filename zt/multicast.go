package zt

import (
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Multicast limits (node/Constants.hpp).
const (
	multicastLikeExpiry  = 600000 // ms a LIKE or gather result counts
	multicastTxTimeout   = 5000   // ms a multicast waits for members to be discovered
	minGatherGap         = 250    // ms between GATHERs for a group that has no known members
	regatherPeriod       = 1000   // ms between GATHERs while a frame waits for members
	maxPendingMulticasts = 16     // frames per group waiting for members
	maxGatherAnswer      = 1000   // addresses per OK(MULTICAST_GATHER)
	likesPerPacket       = 400
	maxGroupsPerNetwork  = 4096
	maxMembersPerGroup   = 8192
	maxGroupsTotal       = 65536
)

type groupKey struct {
	nwid  ztaddr.NetworkID
	group ztaddr.MulticastGroup
}

// groupState is what we know of one multicast group of one network: who subscribed to it
// (from their LIKEs or from gather answers), and frames waiting for members to be found.
type groupState struct {
	members    map[ztaddr.Address]int64 // last confirmation, ms
	lastGather int64
	pending    []*pendingMulticast
}

type pendingMulticast struct {
	nw        *Network
	etherType uint16
	data      []byte
	at        int64
	sent      map[ztaddr.Address]bool
	limit     int
}

// multicaster tracks group members for every network (for all networks when we are a root).
type multicaster struct {
	mu     sync.Mutex
	groups map[groupKey]*groupState
}

func newMulticaster() *multicaster { return &multicaster{groups: map[groupKey]*groupState{}} }

func (m *multicaster) stateLocked(k groupKey, create bool) *groupState {
	g := m.groups[k]
	if g == nil && create {
		if len(m.groups) >= maxGroupsTotal {
			return nil
		}
		g = &groupState{members: map[ztaddr.Address]int64{}}
		m.groups[k] = g
	}
	return g
}

// add records a as a member; it returns frames pending for the group, to be sent to a.
func (m *multicaster) add(nwid ztaddr.NetworkID, grp ztaddr.MulticastGroup, a ztaddr.Address, now int64) []*pendingMulticast {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.stateLocked(groupKey{nwid, grp}, true)
	if g == nil || (len(g.members) >= maxMembersPerGroup && g.members[a] == 0) {
		return nil
	}
	g.members[a] = now
	var out []*pendingMulticast
	kept := g.pending[:0]
	for _, p := range g.pending {
		if now-p.at > multicastTxTimeout || len(p.sent) >= p.limit {
			continue
		}
		kept = append(kept, p)
		if !p.sent[a] {
			p.sent[a] = true
			out = append(out, p)
		}
	}
	clear(g.pending[len(kept):])
	g.pending = kept
	return out
}

func (m *multicaster) remove(nwid ztaddr.NetworkID, grp ztaddr.MulticastGroup, a ztaddr.Address) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g := m.stateLocked(groupKey{nwid, grp}, false); g != nil {
		delete(g.members, a)
	}
}

// members returns up to limit current members of a group other than except, in random order,
// and how many are known in total.
func (m *multicaster) members(nwid ztaddr.NetworkID, grp ztaddr.MulticastGroup, except ztaddr.Address, limit int, now int64) ([]ztaddr.Address, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.stateLocked(groupKey{nwid, grp}, false)
	if g == nil {
		return nil, 0
	}
	var all []ztaddr.Address
	for a, t := range g.members {
		if now-t > multicastLikeExpiry {
			delete(g.members, a)
		} else if a != except {
			all = append(all, a)
		}
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return all[:min(len(all), limit)], len(all)
}

// gatherDue reports whether to ask for members of a group now, and notes that we do.
func (m *multicaster) gatherDue(nwid ztaddr.NetworkID, grp ztaddr.MulticastGroup, known int, now, period int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.stateLocked(groupKey{nwid, grp}, true)
	if g == nil {
		return false
	}
	gap := period
	if known == 0 {
		gap = minGatherGap
	}
	if now-g.lastGather < gap {
		return false
	}
	g.lastGather = now
	return true
}

// regather lists (and marks as asked) the groups of a network that have frames waiting for
// members no gather has found yet, last asked about more than period ms ago: an answer may
// have been empty because the members' LIKEs arrived just after our GATHER.
func (m *multicaster) regather(nwid ztaddr.NetworkID, now, period int64) []ztaddr.MulticastGroup {
	m.mu.Lock()
	defer m.mu.Unlock()
	var gs []ztaddr.MulticastGroup
	for k, g := range m.groups {
		if k.nwid != nwid || now-g.lastGather < period {
			continue
		}
		for _, p := range g.pending {
			if len(p.sent) == 0 && now-p.at <= multicastTxTimeout {
				g.lastGather = now
				gs = append(gs, k.group)
				break
			}
		}
	}
	return gs
}

func (m *multicaster) addPending(nwid ztaddr.NetworkID, grp ztaddr.MulticastGroup, p *pendingMulticast) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.stateLocked(groupKey{nwid, grp}, true)
	if g == nil {
		return
	}
	if len(g.pending) >= maxPendingMulticasts {
		g.pending = g.pending[1:]
	}
	g.pending = append(g.pending, p)
}

func (m *multicaster) forgetNetwork(nwid ztaddr.NetworkID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.groups {
		if k.nwid == nwid {
			delete(m.groups, k)
		}
	}
}

func (m *multicaster) expire(now int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, g := range m.groups {
		for a, t := range g.members {
			if now-t > multicastLikeExpiry {
				delete(g.members, a)
			}
		}
		kept := g.pending[:0]
		for _, p := range g.pending {
			switch {
			case now-p.at <= multicastTxTimeout:
				kept = append(kept, p)
			case len(p.sent) == 0:
				p.nw.stats.drop(dropNoMembers)
			}
		}
		g.pending = kept
		if len(g.members) == 0 && len(g.pending) == 0 && now-g.lastGather > multicastLikeExpiry {
			delete(m.groups, k)
		}
	}
}

// Subscribe asks the network to deliver frames sent to a multicast group (announced to the
// roots, the controller and members with MULTICAST_LIKE). Our ARP group for each assigned
// IPv4, the NDP solicited-node group of each assigned IPv6 and the broadcast group (if the
// network enables it) are subscribed automatically.
func (nw *Network) Subscribe(group [6]byte, adi uint32) {
	g := ztaddr.MulticastGroup{MAC: group, ADI: adi}
	nw.mu.Lock()
	nw.subs[g]++
	isNew := nw.subs[g] == 1 && len(nw.subs) <= maxGroupsPerNetwork
	nw.mu.Unlock()
	if isNew && nw.state.Load() != nil {
		nw.announceLikes(nw.node.now())
	}
}

// Unsubscribe undoes Subscribe.
func (nw *Network) Unsubscribe(group [6]byte, adi uint32) {
	g := ztaddr.MulticastGroup{MAC: group, ADI: adi}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.subs[g]--; nw.subs[g] <= 0 {
		delete(nw.subs, g)
	}
}

// groups lists the groups we subscribe to on the network.
func (nw *Network) groups(st *netState) []ztaddr.MulticastGroup {
	var gs []ztaddr.MulticastGroup
	for _, p := range st.prefixes {
		if g, ok := ztaddr.AddressResolutionGroup(p.Addr()); ok {
			gs = append(gs, g)
		}
	}
	if st.config.BroadcastEnabled() {
		gs = append(gs, ztaddr.MulticastGroup{MAC: ztaddr.Broadcast})
	}
	nw.mu.Lock()
	for g := range nw.subs {
		gs = append(gs, g)
	}
	nw.mu.Unlock()
	slices.SortFunc(gs, func(a, b ztaddr.MulticastGroup) int {
		if c := slices.Compare(a.MAC[:], b.MAC[:]); c != 0 {
			return c
		}
		return int(int64(a.ADI) - int64(b.ADI))
	})
	return slices.Compact(gs)
}

func (nw *Network) subscribed(st *netState, g ztaddr.MulticastGroup) bool {
	return slices.Contains(nw.groups(st), g)
}

// announceLikes sends our subscriptions to the roots, the controller and the network's
// anchors and multicast replicators.
func (nw *Network) announceLikes(now int64) {
	st := nw.state.Load()
	if st == nil {
		return
	}
	nw.mu.Lock()
	nw.lastLikes = now
	nw.mu.Unlock()
	n := nw.node
	to := map[ztaddr.Address]bool{}
	for _, r := range n.topo.rootPeers() {
		to[r.addr] = true
	}
	if c := nw.id.Controller(); c != n.addr {
		to[c] = true
	}
	for _, a := range st.config.SpecialistsWith(netconf.SpecialistAnchor | netconf.SpecialistMulticastReplicator) {
		to[a] = true
	}
	gs := nw.groups(st)
	for a := range to {
		nw.sendLikes(a, gs)
	}
}

func (nw *Network) sendLikes(to ztaddr.Address, gs []ztaddr.MulticastGroup) {
	for len(gs) > 0 {
		k := min(len(gs), likesPerPacket)
		m := &wire.MulticastLike{}
		for _, g := range gs[:k] {
			m.Subscriptions = append(m.Subscriptions, wire.Subscription{NetworkID: nw.id, Group: g})
		}
		nw.node.sendMsg(to, wire.VerbMulticastLike, m, optCompress)
		gs = gs[k:]
	}
}

// sendMulticast sends a multicast or broadcast frame: one MULTICAST_FRAME to each known
// member of its group, up to the network's multicast limit. While fewer members are known
// than the limit, it asks the roots and the controller for more (MULTICAST_GATHER) and keeps
// the frame for 5 s for members still to be discovered.
func (nw *Network) sendMulticast(st *netState, dst ztaddr.MAC, etherType uint16, payload []byte) {
	n := nw.node
	limit := int(min(st.config.MulticastLimit, 1<<16))
	g, _ := ztaddr.GroupForFrame(dst, etherType, payload)
	if limit == 0 || (g.MAC == ztaddr.Broadcast && g.ADI == 0 && !st.config.BroadcastEnabled()) {
		nw.stats.drop(dropBadFrame)
		return
	}
	if !nw.filter(st, frameMeta{from: n.addr, src: nw.mac, dst: dst, etherType: etherType}, payload, false) {
		nw.stats.drop(dropRulesOut)
		return
	}
	now := n.now()
	recipients, known := n.mcast.members(nw.id, g, n.addr, limit, now)
	short := known < limit
	if short && n.mcast.gatherDue(nw.id, g, known, now, n.t.gatherPeriod) {
		nw.gather(st, g, uint32(limit-known+1))
	}
	nw.stats.out(len(payload))
	if short {
		p := &pendingMulticast{nw: nw, etherType: etherType, data: append([]byte(nil), payload...), at: now,
			sent: map[ztaddr.Address]bool{}, limit: limit}
		for _, a := range recipients {
			p.sent[a] = true
		}
		n.mcast.addPending(nw.id, g, p)
	}
	var gatherLimit uint32
	if short {
		gatherLimit = uint32(limit - known)
	}
	for _, a := range recipients {
		nw.sendMulticastTo(st, a, g, etherType, payload, gatherLimit, now)
	}
}

func (nw *Network) sendMulticastTo(st *netState, to ztaddr.Address, g ztaddr.MulticastGroup, etherType uint16, payload []byte, gatherLimit uint32, now int64) {
	nw.pushCredentialsTo(to, false, now)
	m := &wire.MulticastFrame{NetworkID: nw.id, Group: g, EtherType: etherType, Data: payload}
	opt := optCompress
	if st.config.Flags&netconf.FlagDisableCompression != 0 {
		opt = 0
	}
	if gatherLimit > 0 {
		m.Flags, m.GatherLimit = wire.MulticastFlagGatherLimit, gatherLimit
		opt |= optExpect
	}
	nw.node.sendMsg(to, wire.VerbMulticastFrame, m, opt)
}

// gather asks the best root and the controller for members of a group.
func (nw *Network) gather(st *netState, g ztaddr.MulticastGroup, limit uint32) {
	n := nw.node
	q := &wire.MulticastGather{NetworkID: nw.id, Group: g, Limit: limit}
	if st.config.COM != nil {
		q.Flags, q.COM = wire.GatherFlagCOM, st.config.COM
	}
	var to []ztaddr.Address
	if root, _ := n.topo.bestRoot(n.now()); root != nil {
		to = append(to, root.addr)
	}
	if c := nw.id.Controller(); c != n.addr && !slices.Contains(to, c) {
		to = append(to, c)
	}
	for _, a := range to {
		n.sendMsg(a, wire.VerbMulticastGather, q, optExpect)
	}
}

// onGatherResult records members learned from OK(MULTICAST_GATHER) or OK(MULTICAST_FRAME)
// and sends them the frames waiting for them.
func (n *Node) onGatherResult(nwid ztaddr.NetworkID, g ztaddr.MulticastGroup, members []ztaddr.Address) {
	nw := n.Network(nwid)
	if nw == nil {
		return
	}
	now := n.now()
	for _, a := range members {
		if a != n.addr && !a.IsReserved() {
			n.sendPending(n.mcast.add(nwid, g, a, now), g, a, now)
		}
	}
}

func (n *Node) sendPending(ps []*pendingMulticast, g ztaddr.MulticastGroup, to ztaddr.Address, now int64) {
	for _, p := range ps {
		if st := p.nw.state.Load(); st != nil {
			p.nw.sendMulticastTo(st, to, g, p.etherType, p.data, 0, now)
		}
	}
}

func (n *Node) onMulticastLike(in *inbound) {
	m, err := wire.ParseMulticastLike(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	amRoot := n.topo.isRoot()
	for _, s := range m.Subscriptions {
		if !amRoot && !n.acceptsMulticastFrom(s.NetworkID, in.peer) {
			continue
		}
		n.sendPending(n.mcast.add(s.NetworkID, s.Group, in.peer.addr, in.now), s.Group, in.peer.addr, in.now)
	}
}

// acceptsMulticastFrom reports whether a leaf takes multicast subscriptions and gathers from
// pr on a network: pr must be a member we admit, or we are the network's controller.
func (n *Node) acceptsMulticastFrom(nwid ztaddr.NetworkID, pr *peer) bool {
	if nwid.Controller() == n.addr && n.configMaster() != nil {
		return true
	}
	nw := n.Network(nwid)
	if nw == nil {
		return false
	}
	st := nw.state.Load()
	return st != nil && nw.gate(pr, st)
}

func (n *Node) onGather(in *inbound) {
	q, err := wire.ParseMulticastGather(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	nw := n.Network(q.NetworkID)
	if q.COM != nil && nw != nil {
		nw.addCOM(q.COM, in.now)
	}
	if !n.topo.isRoot() && !n.acceptsMulticastFrom(q.NetworkID, in.peer) {
		return
	}
	limit := int(min(q.Limit, maxGatherAnswer))
	if limit == 0 {
		return
	}
	n.answerGather(in, q.NetworkID, q.Group, limit, func(r *wire.GatherResult) wire.Message {
		return &okMessage{wire.VerbMulticastGather, in.pkt.ID(), r}
	})
}

// answerGather replies with members of a group (ourselves included if subscribed), if any.
func (n *Node) answerGather(in *inbound, nwid ztaddr.NetworkID, g ztaddr.MulticastGroup, limit int, wrap func(*wire.GatherResult) wire.Message) {
	members, total := n.mcast.members(nwid, g, in.peer.addr, limit, in.now)
	if nw := n.Network(nwid); nw != nil {
		if st := nw.state.Load(); st != nil && nw.subscribed(st, g) {
			total++
			if len(members) < limit {
				members = append(members, n.addr)
			}
		}
	}
	if len(members) == 0 {
		return
	}
	n.reply(in, wire.VerbOK, wrap(&wire.GatherResult{NetworkID: nwid, Group: g, TotalKnown: uint32(total), Members: members}), 0)
}

func (n *Node) onMulticastFrame(in *inbound) {
	m, err := wire.ParseMulticastFrame(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	nw, st := n.networkFor(m.NetworkID)
	if nw == nil {
		return
	}
	if m.COM != nil {
		nw.addCOM(m.COM, in.now)
	}
	if !nw.admit(in, st) {
		return
	}
	src := ztaddr.NodeMAC(in.peer.addr, nw.id)
	if m.Flags&wire.MulticastFlagSourceMAC != 0 {
		src = m.Source
	}
	if st.config.MulticastLimit == 0 || !m.Group.MAC.IsMulticast() || src.IsZero() || src.IsMulticast() || src == nw.mac ||
		(src != ztaddr.NodeMAC(in.peer.addr, nw.id) && !isActiveBridge(st, in.peer.addr)) {
		nw.stats.drop(dropBadFrame)
		return
	}
	meta := frameMeta{from: in.peer.addr, to: n.addr, src: src, dst: m.Group.MAC, etherType: m.EtherType}
	if !nw.filter(st, meta, m.Data, true) {
		nw.stats.drop(dropRulesIn)
		return
	}
	nw.deliver(m.Group.MAC, src, m.EtherType, m.Data)
	if m.Flags&wire.MulticastFlagGatherLimit != 0 && m.GatherLimit > 0 {
		n.answerGather(in, nw.id, m.Group, int(min(m.GatherLimit, maxGatherAnswer)), func(r *wire.GatherResult) wire.Message {
			return &okMessage{wire.VerbMulticastFrame, in.pkt.ID(), &wire.MulticastFrameOK{NetworkID: r.NetworkID, Group: r.Group,
				Flags: wire.MulticastFlagGatherLimit, TotalKnown: r.TotalKnown, Members: r.Members}}
		})
	}
}
