package zt

import (
	"net/netip"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// inbound is an authenticated, decrypted and decompressed packet being handled.
type inbound struct {
	sock *socket
	from netip.AddrPort
	peer *peer
	pkt  wire.Packet
	hops int
	now  int64
	path *path // the known path it arrived on, nil if relayed or new
	// replay marks a frame handled again after its sender's credentials arrived.
	replay bool
}

// Limits on what peers can make us do.
const (
	whoisAnswerGap      = 100   // ms between WHOIS answers per requester (leaves)
	maxWhoisAnswer      = 128   // identities per OK(WHOIS)
	pushPathsWindow     = 30000 // ms
	maxPushPathsPackets = 8     // PUSH_DIRECT_PATHS accepted per peer per window
	maxProbesPerFamily  = 8     // addresses tried per PUSH_DIRECT_PATHS and family
	pushPathsRelayed    = 15000 // ms between our PUSH_DIRECT_PATHS while only relayed
	pushPathsDirect     = 120000
	surfaceExpiry       = 600000
	rootActivityTimeout = 500000
	// staleAfterRelayed: a direct path quiet this long (ms) is suspect when the peer relays.
	staleAfterRelayed = 2000
)

// handle dispatches a packet by verb, then does what zerotier-one's Peer::received does:
// an OK that arrived directly on an unknown physical path teaches us that path; any other
// direct packet from an unknown path makes us HELLO that address to confirm it.
func (n *Node) handle(in *inbound) {
	pr, now := in.peer, in.now
	verb := in.pkt.Verb()
	pr.lastReceive.Store(now)
	switch verb {
	case wire.VerbFrame, wire.VerbExtFrame, wire.VerbMulticastFrame, wire.VerbNetworkConfigRequest, wire.VerbNetworkConfig:
		pr.lastNontrivial.Store(now)
	}
	if in.hops == 0 {
		if in.path = pr.findPath(in.sock, in.from); in.path != nil {
			in.path.lastIn.Store(now)
		}
	} else if x := pr.alivePath(now); x != nil && now-x.lastIn.Load() > staleAfterRelayed {
		// The peer sends through a relay although we think we have a direct path: it may
		// have restarted on another port. Stop using the path until it answers a probe.
		x.lastIn.Store(now - pathAlive)
		n.contact(pr, x.addr, false, now)
	}
	if pr.isRoot() {
		n.rootHeard(now)
	}
	valid := true
	switch verb {
	case wire.VerbNOP, wire.VerbUserMessage:
	case wire.VerbHello:
		valid = n.onHello(in)
	case wire.VerbOK:
		valid = n.onOK(in)
	case wire.VerbError:
		n.onError(in)
	case wire.VerbWhois:
		n.onWhois(in)
	case wire.VerbRendezvous:
		n.onRendezvous(in)
	case wire.VerbEcho:
		n.onEcho(in)
	case wire.VerbPushDirectPaths:
		n.onPushDirectPaths(in)
	case wire.VerbFrame:
		n.onFrame(in)
	case wire.VerbExtFrame:
		n.onExtFrame(in)
	case wire.VerbMulticastFrame:
		n.onMulticastFrame(in)
	case wire.VerbMulticastLike:
		n.onMulticastLike(in)
	case wire.VerbMulticastGather:
		n.onGather(in)
	case wire.VerbNetworkCredentials:
		n.onCredentials(in)
	case wire.VerbNetworkConfigRequest:
		n.onConfigRequest(in)
	case wire.VerbNetworkConfig:
		n.onNetworkConfig(in)
	}
	if in.hops != 0 || in.path != nil || !valid || !n.usableAddress(in.from) {
		return
	}
	if verb == wire.VerbOK {
		if _, isNew := pr.learnPath(in.sock, in.from, now); isNew {
			n.log.Debug("learned path", "peer", pr.addr.String(), "at", in.from)
			n.flushQueue()
			if pr.isRoot() {
				// WHOIS queries and subscriptions made while no root was reachable were lost.
				n.retryWhois(now, true)
				for _, nw := range n.Networks() {
					nw.announceLikes(now)
				}
			}
		}
	} else if pr.shouldTry(in.from, now) {
		n.sendHello(pr, in.sock, in.from, now)
	}
}

func (n *Node) rootHeard(now int64) {
	n.lastRootIn.Store(now)
	if !n.online.Swap(true) {
		n.log.Info("online: a root answered")
	}
}

// reply answers in: straight back to the physical address it came from if it came
// directly, else through the normal path.
func (n *Node) reply(in *inbound, verb wire.Verb, m wire.Message, opt sendOpt) {
	p, b := n.newPacket(in.peer.addr, verb)
	defer putBuffer(b)
	p = wire.Packet(m.Append(p))
	if in.hops == 0 {
		n.armorAndSend(in.peer, p, in.sock, in.from, in.path, opt, in.now)
	} else {
		n.sendPacket(in.peer.addr, p, opt)
	}
}

// okMessage is an OK with its envelope, ready to send.
type okMessage struct {
	verb wire.Verb
	id   uint64
	body wire.Message
}

func (o *okMessage) Append(b []byte) []byte {
	b = wire.AppendOKHeader(b, o.verb, o.id)
	if o.body != nil {
		b = o.body.Append(b)
	}
	return b
}

func (n *Node) onHello(in *inbound) bool {
	pr := in.peer
	if err := wire.CryptHello(in.pkt, pr.key); err != nil {
		n.stats.drop(dropMalformed)
		return false
	}
	h, err := wire.ParseHello(in.pkt.Payload())
	if err != nil || h.ProtocolVersion < wire.MinProtocolVersion {
		n.stats.drop(dropMalformed)
		return false
	}
	pr.setVersion(h.ProtocolVersion, h.Major, h.Minor, h.Revision)
	if in.hops == 0 && pr.isRoot() && h.Destination.AddrPort.IsValid() {
		n.noteSurface(h.Destination.AddrPort, in.now)
	}
	ok := &wire.HelloOK{Timestamp: h.Timestamp, ProtocolVersion: wire.ProtocolVersion, Major: versionMajor,
		Minor: versionMinor, Revision: versionRevision, PhysicalAddress: ztaddr.InetAddressOf(in.from)}
	if pl := n.topo.getPlanet(); pl != nil && h.PlanetID == pl.ID && h.PlanetTS < pl.Timestamp {
		ok.Worlds = pl.Append(ok.Worlds)
	}
	for _, ref := range h.Moons {
		for _, m := range n.topo.getMoons() {
			if m.ID == ref.ID && m.Timestamp > ref.Timestamp {
				ok.Worlds = m.Append(ok.Worlds)
			}
		}
	}
	n.reply(in, wire.VerbOK, &okMessage{wire.VerbHello, in.pkt.ID(), ok}, 0)
	return true
}

func (n *Node) onOK(in *inbound) bool {
	pr := in.peer
	m, err := wire.ParseOK(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return false
	}
	if !n.expected(m.InReID) {
		n.stats.drop(dropUnsolicited)
		return false
	}
	switch m.InReVerb {
	case wire.VerbHello:
		o, err := wire.ParseHelloOK(m.Body)
		if err != nil {
			n.stats.drop(dropMalformed)
			return false
		}
		pr.setVersion(o.ProtocolVersion, o.Major, o.Minor, o.Revision)
		if in.hops == 0 {
			if rtt := in.now - int64(o.Timestamp); rtt >= 0 && rtt < 60000 {
				pr.latency.Store(rtt)
			}
			if pr.isRoot() && o.PhysicalAddress.AddrPort.IsValid() {
				n.noteSurface(o.PhysicalAddress.AddrPort, in.now)
			}
		}
		if pr.isRoot() && len(o.Worlds) > 0 {
			n.applyWorlds(o)
		}
	case wire.VerbWhois:
		if !pr.isRoot() {
			n.stats.drop(dropUnsolicited)
			return true
		}
		w, err := wire.ParseWhoisOK(m.Body)
		if err != nil {
			n.stats.drop(dropMalformed)
			return true
		}
		for _, id := range w.Identities {
			np, _, err := n.topo.addPeer(id)
			if err != nil {
				n.log.Warn("WHOIS answer collides with a known identity", "address", id.Address().String())
				continue
			}
			n.identityLearned(np)
		}
	case wire.VerbNetworkConfigRequest:
		c, err := wire.ParseConfigChunk(m.Body)
		if err != nil {
			n.stats.drop(dropMalformed)
			return true
		}
		if nw := n.Network(c.NetworkID); nw != nil {
			nw.onConfigChunk(c, pr, 0)
		}
	case wire.VerbMulticastGather:
		g, err := wire.ParseGatherResult(m.Body)
		if err != nil {
			n.stats.drop(dropMalformed)
			return true
		}
		n.onGatherResult(g.NetworkID, g.Group, g.Members)
	case wire.VerbMulticastFrame:
		o, err := wire.ParseMulticastFrameOK(m.Body)
		if err != nil {
			n.stats.drop(dropMalformed)
			return true
		}
		if o.Flags&wire.MulticastFlagGatherLimit != 0 {
			n.onGatherResult(o.NetworkID, o.Group, o.Members)
		}
	}
	return true
}

// applyWorlds installs planet and moon updates a root sent with OK(HELLO); they replace ours
// only if newer and signed with the key ours names.
func (n *Node) applyWorlds(o *wire.HelloOK) {
	ws, err := o.ParseWorlds()
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	for _, w := range ws {
		var replaced bool
		var file []string
		switch w.Type {
		case world.TypePlanet:
			replaced, err = n.topo.offerPlanet(w)
			file = []string{planetFile}
		case world.TypeMoon:
			replaced, err = n.topo.offerMoon(w)
			file = []string{moonsDir, moonFile(w.ID)}
		}
		if err != nil {
			n.log.Warn("world update refused", "world", w.ID, "err", err)
			continue
		}
		if replaced {
			n.log.Info("world updated", "world", w.ID, "timestamp", w.Timestamp, "roots", len(w.Roots))
			if err := n.home.write(w.Bytes(), 0o644, file...); err != nil {
				n.log.Warn("saving world", "err", err)
			}
		}
	}
}

func (n *Node) onError(in *inbound) {
	pr := in.peer
	e, err := wire.ParseError(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	nwid, hasNetwork := e.NetworkID()
	var nw *Network
	if hasNetwork {
		nw = n.Network(nwid)
	}
	fromController := nw != nil && pr.addr == nwid.Controller() && e.InReVerb == wire.VerbNetworkConfigRequest
	switch e.Code {
	case wire.ErrorObjectNotFound, wire.ErrorUnsupportedOperation:
		if fromController {
			nw.setFailure(StatusNotFound)
		}
	case wire.ErrorBadProtocolVersion:
		if fromController {
			nw.setFailure(StatusClientTooOld)
		}
	case wire.ErrorNetworkAccessDenied:
		if fromController {
			nw.setFailure(StatusAccessDenied)
		}
	case wire.ErrorNetworkAuthenticationRequired:
		if fromController {
			nw.setFailure(StatusAuthenticationRequired)
		}
	case wire.ErrorNeedMembershipCertificate:
		if nw != nil {
			nw.pushCredentials(pr, true, in.now)
		}
	case wire.ErrorUnwantedMulticast:
		if id, g, ok := e.UnwantedGroup(); ok {
			n.mcast.remove(id, g, pr.addr)
		}
	case wire.ErrorIdentityCollision:
		if pr.isRoot() && !n.collided.Swap(true) {
			n.log.Error("a root reports that another node has our address with a different key; make a new identity")
		}
	}
}

func (n *Node) onWhois(in *inbound) {
	pr := in.peer
	w, err := wire.ParseWhois(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	if !n.topo.isRoot() {
		if in.now-pr.lastWhoisAnswer.Load() < whoisAnswerGap {
			n.stats.drop(dropRateLimited)
			return
		}
		pr.lastWhoisAnswer.Store(in.now)
	}
	var ids []*identity.Identity
	for _, a := range w.Addresses {
		if len(ids) == maxWhoisAnswer {
			break
		}
		if a == n.addr {
			ids = append(ids, n.id.Public())
		} else if p := n.topo.peer(a); p != nil {
			ids = append(ids, p.id)
		}
	}
	if len(ids) > 0 {
		n.reply(in, wire.VerbOK, &okMessage{wire.VerbWhois, in.pkt.ID(), &wire.WhoisOK{Identities: ids}}, 0)
	}
}

func (n *Node) onRendezvous(in *inbound) {
	if !in.peer.isRoot() {
		n.stats.drop(dropUnsolicited)
		return
	}
	z, err := wire.ParseRendezvous(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	target := n.topo.peer(z.Peer)
	ep := z.Endpoint.AddrPort
	ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
	if target == nil || !n.usableAddress(ep) {
		return
	}
	if x := target.findPath(n.socketFor(ep.Addr()), ep); x != nil && x.alive(in.now) {
		return
	}
	n.log.Debug("RENDEZVOUS: trying direct path", "peer", target.addr.String(), "at", ep)
	n.contact(target, ep, false, in.now)
}

func (n *Node) onEcho(in *inbound) {
	if x := in.path; x != nil {
		if in.now-x.lastEchoReply.Load() < echoReplyGap {
			n.stats.drop(dropRateLimited)
			return
		}
		x.lastEchoReply.Store(in.now)
	}
	n.reply(in, wire.VerbOK, &okMessage{wire.VerbEcho, in.pkt.ID(), wire.Opaque(in.pkt.Payload())}, 0)
}

func (n *Node) onPushDirectPaths(in *inbound) {
	pr := in.peer
	if !pr.pathsIn.allow(in.now, pushPathsWindow, maxPushPathsPackets) {
		n.stats.drop(dropRateLimited)
		return
	}
	m, err := wire.ParsePushDirectPaths(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	var v4, v6 int
	for _, rec := range m.Paths {
		ep := netip.AddrPortFrom(rec.Endpoint.Addr().Unmap(), rec.Endpoint.Port())
		if rec.Flags&wire.PathFlagForget != 0 || !rec.Endpoint.IsValid() || !n.usableAddress(ep) {
			continue
		}
		count := &v6
		if ep.Addr().Is4() {
			count = &v4
		}
		if *count++; *count > maxProbesPerFamily {
			continue
		}
		if x := pr.findPath(n.socketFor(ep.Addr()), ep); x != nil && x.alive(in.now) {
			continue
		}
		n.contact(pr, ep, false, in.now)
	}
}

// trusted notes that pr sent something that passed a network's gate; between trusting
// peers we advertise our physical addresses with PUSH_DIRECT_PATHS.
func (n *Node) trusted(pr *peer, hops int, now int64) {
	pr.lastTrust.Store(now)
	interval := int64(pushPathsRelayed)
	if hops == 0 {
		interval = pushPathsDirect
	}
	if now-pr.lastPathPush.Load() < interval {
		return
	}
	pr.lastPathPush.Store(now)
	eps := n.directPathCandidates(now)
	if len(eps) == 0 {
		return
	}
	m := &wire.PushDirectPaths{}
	for _, ep := range eps {
		m.Paths = append(m.Paths, wire.NewPathRecord(ep))
	}
	n.sendMsg(pr.addr, wire.VerbPushDirectPaths, m, optCompress)
}

// noteSurface records an address of ours as a root saw it (our address outside NAT).
func (n *Node) noteSurface(a netip.AddrPort, now int64) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	n.selfMu.Lock()
	defer n.selfMu.Unlock()
	if len(n.surface) > 64 {
		clear(n.surface)
	}
	n.surface[a] = now
}

// directPathCandidates lists the physical addresses peers might reach us at directly:
// our sockets' interface addresses and the external addresses roots reported.
func (n *Node) directPathCandidates(now int64) []netip.AddrPort {
	seen := map[netip.AddrPort]bool{}
	var out []netip.AddrPort
	add := func(a netip.AddrPort) {
		if !seen[a] && n.usableAddress(a) && len(out) < 32 {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, s := range n.socks {
		for _, a := range s.localAddresses() {
			add(a)
		}
	}
	n.selfMu.Lock()
	var surface []netip.AddrPort
	for a, t := range n.surface {
		if now-t < surfaceExpiry {
			surface = append(surface, a)
		}
	}
	n.selfMu.Unlock()
	for _, a := range surface {
		add(a)
	}
	return out
}
