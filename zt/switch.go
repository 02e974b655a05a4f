package zt

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// The switch moves packets between sockets and handlers. Receive: datagram → fragment
// reassembly or relay → sender lookup (parked while WHOIS resolves an unknown sender) →
// dearmor → decompress → verb handler. Send: build → compress if worthwhile → flag as
// fragmented if over the physical MTU → armor with the peer's key (AES-GMAC-SIV for protocol
// ≥ 12) → the peer's direct path, else through a root → fragments.

// Queue limits.
const (
	expectSlots      = 1024 // recently sent packet IDs that may be answered with OK
	maxParkedPerPeer = 32
	maxParked        = 512 // in all: parked packets are copies of up to 10 KB
	maxWhoisPending  = 1024
	maxQueued        = 1024
	physicalMTU      = wire.DefaultPhysicalMTU
	packetBufferSize = 16 << 10
)

var packetBuffers = sync.Pool{New: func() any { b := make([]byte, 0, packetBufferSize); return &b }}

func getBuffer() *[]byte  { return packetBuffers.Get().(*[]byte) }
func putBuffer(b *[]byte) { *b = (*b)[:0]; packetBuffers.Put(b) }

// sendOpt tunes one send.
type sendOpt uint8

const (
	optCompress sendOpt = 1 << iota // LZ4 the payload if that makes it smaller
	optExpect                       // an OK may answer it (see expect)
)

// expect records a sent packet ID so that an OK quoting it is accepted.
func (n *Node) expect(id uint64) { n.expecting[id%expectSlots].Store(uint32(id>>32) | 1) }

func (n *Node) expected(id uint64) bool {
	return n.expecting[id%expectSlots].Load() == uint32(id>>32)|1
}

// rxBuffers are a receiving goroutine's reusable buffers: packets are handled synchronously,
// so a reassembled or decompressed packet can live in them until the next datagram.
type rxBuffers struct {
	whole, plain []byte
}

// receive handles one datagram.
func (n *Node) receive(s *socket, from netip.AddrPort, b []byte, rx *rxBuffers) {
	n.stats.in(len(b))
	switch {
	case len(b) == wire.BeaconSize:
		return
	case wire.IsFragment(b):
		f := wire.Fragment(b)
		if f.Destination() != n.addr {
			n.relay(b, f.Destination(), 0, f.Hops(), true)
			return
		}
		n.reasmMu.Lock()
		p, done, err := n.reasm.AddFragmentInto(rx.whole[:0], f)
		n.reasmMu.Unlock()
		if err != nil {
			n.stats.drop(dropMalformed)
			return
		}
		if !done {
			return
		}
		rx.whole = p
		n.receivePacket(s, from, p, rx)
		return
	case len(b) < wire.HeaderSize:
		n.stats.drop(dropMalformed)
		return
	}
	p := wire.Packet(b)
	if p.Source() == n.addr {
		n.stats.drop(dropFromSelf)
		return
	}
	if p.Destination() != n.addr {
		n.relay(b, p.Destination(), p.Source(), p.Hops(), false)
		return
	}
	if p.Fragmented() {
		n.reasmMu.Lock()
		whole, done, err := n.reasm.AddHeadInto(rx.whole[:0], p)
		n.reasmMu.Unlock()
		if err != nil {
			n.stats.drop(dropMalformed)
		}
		if !done {
			return
		}
		p, rx.whole = whole, whole
	}
	n.receivePacket(s, from, p, rx)
}

// plainVerb reads the verb of a packet that is not encrypted (cipher 0).
func plainVerb(p wire.Packet) wire.Verb { return wire.Verb(p[27] & 0x1f) }

// receivePacket authenticates a whole packet addressed to us and dispatches it.
func (n *Node) receivePacket(s *socket, from netip.AddrPort, p wire.Packet, rx *rxBuffers) {
	pr := n.topo.peer(p.Source())
	helloInClear := p.Cipher() == wire.CipherPoly1305None && plainVerb(p) == wire.VerbHello
	switch {
	case pr == nil && helloInClear:
		n.peerFromHello(s, from, p)
		return
	case pr == nil:
		n.park(s, from, p)
		return
	case helloInClear:
		id, err := wire.ParseHelloIdentity(p.Payload())
		if err != nil {
			n.stats.drop(dropMalformed)
			return
		}
		if !id.Equal(pr.id) {
			n.identityCollision(s, from, p, id)
			return
		}
	}
	if err := wire.Dearmor(p, pr.key); err != nil {
		n.stats.drop(dropBadMAC)
		return
	}
	if p.Compressed() {
		q, err := wire.Decompress(rx.plain[:0], p)
		if err != nil {
			n.stats.drop(dropMalformed)
			return
		}
		p, rx.plain = q, q
	}
	n.handle(&inbound{sock: s, from: from, peer: pr, pkt: p, hops: p.Hops(), now: n.now()})
}

// peerFromHello starts learning a new peer from the identity in its HELLO: the packet must
// authenticate with the key agreed with that identity; then the identity's memory-hard
// address check (tens of milliseconds, rate-limited per source network) runs on the
// validator goroutine, which handles the HELLO again once the peer is known.
func (n *Node) peerFromHello(s *socket, from netip.AddrPort, p wire.Packet) {
	id, err := wire.ParseHelloIdentity(p.Payload())
	if err != nil || id.Address() != p.Source() {
		n.stats.drop(dropIdentity)
		return
	}
	cand, err := newPeer(n.id, id)
	if err != nil {
		n.stats.drop(dropIdentity)
		return
	}
	if wire.Dearmor(p, cand.key) != nil {
		n.stats.drop(dropBadMAC)
		return
	}
	n.rateMu.Lock()
	busy := n.validating[id.Address()]
	n.rateMu.Unlock()
	if busy || !n.allowIdentityCheck(from.Addr(), n.now()) {
		n.stats.drop(dropRateLimited)
		return
	}
	n.rateMu.Lock()
	n.validating[id.Address()] = true
	n.rateMu.Unlock()
	select {
	case n.validateQ <- &helloToValidate{sock: s, from: from, pkt: append(wire.Packet(nil), p...), peer: cand}:
	default:
		n.doneValidating(id.Address())
		n.stats.drop(dropRateLimited)
	}
}

type helloToValidate struct {
	sock *socket
	from netip.AddrPort
	pkt  wire.Packet
	peer *peer
}

const validateQueueLength = 64

// validator checks the identities of new peers off the receive path (one per CPU).
func (n *Node) validator() {
	defer n.wg.Done()
	var rx rxBuffers
	for {
		var h *helloToValidate
		select {
		case <-n.done:
			return
		case h = <-n.validateQ:
		}
		if err := h.peer.id.Validate(); err != nil {
			n.log.Debug("invalid identity in HELLO", "from", h.from, "address", h.peer.addr.String(), "err", err)
			n.stats.drop(dropIdentity)
			n.doneValidating(h.peer.addr)
			continue
		}
		pr := n.topo.insertPeer(h.peer)
		n.doneValidating(h.peer.addr)
		n.log.Debug("new peer", "peer", pr.addr.String(), "from", h.from)
		n.receivePacket(h.sock, h.from, h.pkt, &rx)
		n.identityLearned(pr)
		n.endBursts()
	}
}

func (n *Node) doneValidating(a ztaddr.Address) {
	n.rateMu.Lock()
	delete(n.validating, a)
	n.rateMu.Unlock()
}

// allowIdentityCheck limits full identity checks to 10 per second per source /24 (IPv4) or
// /48 (IPv6).
func (n *Node) allowIdentityCheck(ip netip.Addr, now int64) bool {
	var key uint32
	if ip.Is4() {
		a := ip.As4()
		key = binary.BigEndian.Uint32(a[:]) >> 8
	} else {
		a := ip.As16()
		key = binary.BigEndian.Uint32(a[:4]) ^ uint32(binary.BigEndian.Uint16(a[4:6]))<<8 | 1<<31
	}
	n.rateMu.Lock()
	defer n.rateMu.Unlock()
	if len(n.newIDs) > 4096 {
		clear(n.newIDs)
	}
	// The value packs the window start (ms) and the count within it.
	v := n.newIDs[key]
	start, count := v>>8, v&0xff
	if now-start >= 1000 {
		start, count = now, 0
	}
	if count >= 10 {
		return false
	}
	n.newIDs[key] = start<<8 | (count + 1)
	return true
}

// identityCollision answers a HELLO claiming a known address with another key: if the HELLO
// authenticates with its own identity, ERROR(IDENTITY_COLLISION) goes back to the sender,
// armored for that identity.
func (n *Node) identityCollision(s *socket, from netip.AddrPort, p wire.Packet, id *identity.Identity) {
	n.stats.drop(dropIdentity)
	other, err := newPeer(n.id, id)
	if err != nil || wire.Dearmor(p, other.key) != nil {
		return
	}
	n.log.Warn("identity collision: a HELLO with another key for a known address", "address", id.Address().String(), "from", from)
	q, b := n.newPacket(id.Address(), wire.VerbError)
	defer putBuffer(b)
	q = wire.Packet((&wire.ErrorMessage{InReVerb: wire.VerbHello, InReID: p.ID(), Code: wire.ErrorIdentityCollision}).Append(q))
	n.armorAndSend(other, q, s, from, nil, 0, n.now())
}

// whoisWait tracks an unknown address: packets from it waiting for its identity, and when
// we last asked a root.
type whoisWait struct {
	asked, since int64
	parked       []parkedPacket
}

type parkedPacket struct {
	sock *socket
	from netip.AddrPort
	pkt  wire.Packet
}

// park keeps a packet from an unknown sender while a root is asked who it is.
func (n *Node) park(s *socket, from netip.AddrPort, p wire.Packet) {
	now := n.now()
	n.whoisMu.Lock()
	w := n.whois[p.Source()]
	if w == nil {
		if len(n.whois) >= maxWhoisPending {
			n.whoisMu.Unlock()
			n.stats.drop(dropUnknownPeer)
			return
		}
		w = &whoisWait{since: now}
		n.whois[p.Source()] = w
	}
	if len(w.parked) < maxParkedPerPeer && n.parked < maxParked {
		w.parked = append(w.parked, parkedPacket{s, from, append(wire.Packet(nil), p...)})
		n.parked++
	} else {
		n.stats.drop(dropUnknownPeer)
	}
	ask := now-w.asked >= n.t.whoisRetry
	if ask {
		w.asked = now
	}
	n.whoisMu.Unlock()
	if ask {
		n.sendWhois(p.Source())
	}
}

// askWhois starts resolving an address we want to send to.
func (n *Node) askWhois(a ztaddr.Address) {
	now := n.now()
	n.whoisMu.Lock()
	w := n.whois[a]
	if w == nil {
		if len(n.whois) >= maxWhoisPending {
			n.whoisMu.Unlock()
			return
		}
		w = &whoisWait{since: now}
		n.whois[a] = w
	}
	ask := now-w.asked >= n.t.whoisRetry
	if ask {
		w.asked = now
	}
	n.whoisMu.Unlock()
	if ask {
		n.sendWhois(a)
	}
}

func (n *Node) sendWhois(a ztaddr.Address) {
	root, _ := n.topo.bestRoot(n.now())
	if root == nil || root.addr == a {
		return
	}
	n.log.Debug("WHOIS", "address", a.String(), "root", root.addr.String())
	n.sendMsg(root.addr, wire.VerbWhois, &wire.Whois{Addresses: []ztaddr.Address{a}}, optExpect)
}

// identityLearned replays what waited for a peer's identity.
func (n *Node) identityLearned(pr *peer) {
	n.whoisMu.Lock()
	w := n.whois[pr.addr]
	delete(n.whois, pr.addr)
	if w != nil {
		n.parked -= len(w.parked)
	}
	n.whoisMu.Unlock()
	if w != nil {
		var rx rxBuffers
		for _, pp := range w.parked {
			n.parkedReplayed.Add(1)
			n.receivePacket(pp.sock, pp.from, pp.pkt, &rx)
		}
	}
	n.flushQueue()
}

// queuedPacket is an unarmored packet waiting for its recipient's identity or a path.
type queuedPacket struct {
	dst ztaddr.Address
	pkt wire.Packet
	opt sendOpt
	at  int64
}

// flushQueue sends the queued packets that can go now, in order per destination, and drops
// those older than the queue timeout.
func (n *Node) flushQueue() {
	n.flushMu.Lock()
	defer n.flushMu.Unlock()
	for {
		n.whoisMu.Lock()
		q := n.txQueue
		n.txQueue = nil
		n.whoisMu.Unlock()
		if len(q) == 0 {
			return
		}
		now := n.now()
		var keep []*queuedPacket
		blocked := map[ztaddr.Address]bool{}
		progress := false
		for _, e := range q {
			if now-e.at > n.t.queueTimeout {
				n.stats.drop(dropNoRoute)
				n.dequeued(e.dst)
				continue
			}
			pr := n.topo.peer(e.dst)
			var s *socket
			var to netip.AddrPort
			var x *path
			if pr != nil && !blocked[e.dst] {
				s, to, x = n.route(pr, now)
			}
			if s == nil {
				blocked[e.dst] = true
				keep = append(keep, e)
				continue
			}
			n.armorAndSend(pr, e.pkt, s, to, x, e.opt, now)
			n.dequeued(e.dst)
			progress = true
		}
		n.whoisMu.Lock()
		n.txQueue = append(keep, n.txQueue...)
		n.whoisMu.Unlock()
		if !progress {
			return
		}
	}
}

func (n *Node) dequeued(dst ztaddr.Address) {
	n.queued.Add(-1)
	n.whoisMu.Lock()
	if n.queuedFor[dst]--; n.queuedFor[dst] <= 0 {
		delete(n.queuedFor, dst)
	}
	n.whoisMu.Unlock()
}

// enqueue queues a packet; sendPacket queues behind packets already waiting for the same
// destination (unless force is false and none wait: then it reports false and does not).
func (n *Node) enqueue(dst ztaddr.Address, p wire.Packet, opt sendOpt, force bool) bool {
	n.whoisMu.Lock()
	defer n.whoisMu.Unlock()
	if !force && n.queuedFor[dst] == 0 {
		return false
	}
	n.queued.Add(1)
	if len(n.txQueue) >= maxQueued {
		n.stats.drop(dropNoRoute)
		return true
	}
	n.txQueue = append(n.txQueue, &queuedPacket{dst: dst, pkt: append(wire.Packet(nil), p...), opt: opt, at: n.now()})
	n.queuedFor[dst]++
	return true
}

// newPacket starts a packet to dst in a pooled buffer (give it back with putBuffer).
func (n *Node) newPacket(dst ztaddr.Address, verb wire.Verb) (wire.Packet, *[]byte) {
	b := getBuffer()
	return wire.NewPacket((*b)[:0], rand.Uint64(), dst, n.addr, verb), b
}

// sendMsg sends a message to dst through the normal path (queued if dst is unknown or
// unreachable for now).
func (n *Node) sendMsg(dst ztaddr.Address, verb wire.Verb, m wire.Message, opt sendOpt) {
	p, b := n.newPacket(dst, verb)
	if m != nil {
		p = wire.Packet(m.Append(p))
	}
	n.sendPacket(dst, p, opt)
	putBuffer(b)
}

// sendPacket sends an unarmored packet through the normal path. p may be modified.
func (n *Node) sendPacket(dst ztaddr.Address, p wire.Packet, opt sendOpt) bool {
	return n.sendPacketVia(nil, dst, p, opt)
}

// sendPacketVia is sendPacket that, with tx, adds p to tx's batches instead of sending it at
// once: p must then stay unchanged until tx is flushed.
func (n *Node) sendPacketVia(tx *txSet, dst ztaddr.Address, p wire.Packet, opt sendOpt) bool {
	if len(p) > wire.MaxPacketSize {
		n.stats.drop(dropMalformed)
		return false
	}
	pr := n.topo.peer(dst)
	if pr == nil {
		n.enqueue(dst, p, opt, true)
		n.askWhois(dst)
		return false
	}
	if n.queued.Load() > 0 && n.enqueue(dst, p, opt, false) {
		n.flushQueue() // keep the order of packets already waiting for dst
		return false
	}
	now := tx.clock(n)
	s, to, x := n.route(pr, now)
	if s == nil {
		n.enqueue(dst, p, opt, true)
		return false
	}
	if tx != nil {
		return n.armorAndQueue(tx, pr, p, s, to, x, now)
	}
	return n.armorAndSend(pr, p, s, to, x, opt, now)
}

// route chooses where a packet for pr goes: its alive direct path, else the best root (which
// relays it), else a direct path not heard from lately.
func (n *Node) route(pr *peer, now int64) (*socket, netip.AddrPort, *path) {
	if x := pr.alivePath(now); x != nil {
		return x.sock, x.addr, x
	}
	if root, x := n.topo.bestRoot(now); root != nil && root != pr {
		return x.sock, x.addr, x
	}
	if x := pr.bestPath(now); x != nil {
		return x.sock, x.addr, x
	}
	return nil, netip.AddrPort{}, nil
}

// armorAndSend compresses (if asked), armors and transmits p to pr at the given physical
// address, in fragments if it exceeds the physical MTU. x, if not nil, is the path used.
func (n *Node) armorAndSend(pr *peer, p wire.Packet, s *socket, to netip.AddrPort, x *path, opt sendOpt, now int64) bool {
	var cb *[]byte
	if opt&optCompress != 0 {
		cb = getBuffer()
		p = wire.Compress(*cb, p)
	}
	p.SetFragmented(len(p) > physicalMTU)
	wire.Armor(p, pr.key, pr.cipher())
	if opt&optExpect != 0 {
		n.expect(p.ID())
	}
	var err error
	switch total := wire.FragmentCount(len(p), physicalMTU); total {
	case 0:
		err = wire.ErrTooLarge
	case 1:
		n.stats.out(len(p))
		err = s.writeTo(p, to)
	default:
		for i := range total {
			n.stats.out(min(physicalMTU, len(p)-i*(physicalMTU-wire.FragmentHeaderSize)))
		}
		err = s.writePacket(p, physicalMTU, total, to)
	}
	if x != nil {
		x.lastOut.Store(now)
	}
	if cb != nil {
		putBuffer(cb)
	}
	if err != nil {
		n.stats.drop(dropSendFailed)
		n.log.Debug("send", "to", pr.addr.String(), "at", to, "err", err)
		return false
	}
	return true
}

// armorAndQueue armors p for pr and adds it to tx's batch for socket s.
func (n *Node) armorAndQueue(tx *txSet, pr *peer, p wire.Packet, s *socket, to netip.AddrPort, x *path, now int64) bool {
	p.SetFragmented(len(p) > physicalMTU)
	wire.Armor(p, pr.key, pr.cipher())
	total := wire.FragmentCount(len(p), physicalMTU)
	if total == 0 {
		n.stats.drop(dropSendFailed)
		return false
	}
	b := tx.batch(s)
	if !b.room(total) {
		tx.flushBatch(n, b)
	}
	if err := b.add(p, physicalMTU, total, to); err != nil {
		n.stats.drop(dropSendFailed)
		n.log.Debug("send", "to", pr.addr.String(), "at", to, "err", err)
		return false
	}
	for i := range total {
		n.stats.out(min(physicalMTU, len(p)-i*(physicalMTU-wire.FragmentHeaderSize)))
	}
	if x != nil {
		x.lastOut.Store(now)
	}
	return true
}

// txSet collects packets for transmission during one burst (Network.WriteFrames): a batch
// per socket, and the pooled buffers the batched packets live in until they are sent.
type txSet struct {
	batches []*txBatch
	bufs    []*[]byte
	now     int64 // the node's clock when the burst began: one reading for all its frames
}

// clock is the time for a send: the burst's, or the node's clock without a set.
func (t *txSet) clock(n *Node) int64 {
	if t == nil {
		return n.now()
	}
	return t.now
}

var txSets = sync.Pool{New: func() any { return new(txSet) }}

// batch returns the batch of socket s.
func (t *txSet) batch(s *socket) *txBatch {
	for _, b := range t.batches {
		if b.sock == s {
			return b
		}
	}
	b := getTxBatch(s)
	t.batches = append(t.batches, b)
	return b
}

// keep holds a buffer until the set is flushed.
func (t *txSet) keep(b *[]byte) { t.bufs = append(t.bufs, b) }

func (t *txSet) flushBatch(n *Node, b *txBatch) {
	if err := b.flush(); err != nil {
		n.stats.drop(dropSendFailed)
		n.log.Debug("send", "err", err)
	}
}

// flush sends everything, returns the buffers and the set itself to their pools.
func (t *txSet) flush(n *Node) {
	for _, b := range t.batches {
		t.flushBatch(n, b)
		b.release()
	}
	for _, b := range t.bufs {
		putBuffer(b)
	}
	clear(t.batches)
	clear(t.bufs)
	t.batches, t.bufs = t.batches[:0], t.bufs[:0]
	txSets.Put(t)
}

// sendHello sends a HELLO straight to a physical address (never relayed, never fragmented).
func (n *Node) sendHello(pr *peer, s *socket, to netip.AddrPort, now int64) {
	if s == nil {
		return
	}
	p, b := n.newPacket(pr.addr, wire.VerbHello)
	defer putBuffer(b)
	h := wire.Hello{ProtocolVersion: wire.ProtocolVersion, Major: versionMajor, Minor: versionMinor,
		Revision: versionRevision, Timestamp: uint64(now), Identity: n.id, Destination: ztaddr.InetAddressOf(to)}
	if pl := n.topo.getPlanet(); pl != nil {
		h.PlanetID, h.PlanetTS = pl.ID, pl.Timestamp
	}
	for _, m := range n.topo.getMoons() {
		h.Moons = append(h.Moons, wire.MoonRef{Type: m.Type, ID: m.ID, Timestamp: m.Timestamp})
	}
	p = wire.Packet(h.Append(p))
	if err := wire.CryptHello(p, pr.key); err != nil {
		return
	}
	wire.Armor(p, pr.key, wire.CipherPoly1305None)
	n.expect(p.ID())
	n.stats.out(len(p))
	if err := s.writeTo(p, to); err != nil {
		n.stats.drop(dropSendFailed)
		return
	}
	if x := pr.findPath(s, to); x != nil {
		x.lastOut.Store(now)
		x.lastHello.Store(now)
	}
}

// contact probes a physical address of pr: an ECHO if pr's version is known, else a HELLO.
// The OK that comes back directly teaches us the path.
func (n *Node) contact(pr *peer, to netip.AddrPort, fullHello bool, now int64) {
	s := n.socketFor(to.Addr())
	if s == nil {
		return
	}
	if fullHello || pr.protocolVersion() < 5 {
		n.sendHello(pr, s, to, now)
		return
	}
	p, b := n.newPacket(pr.addr, wire.VerbEcho)
	n.armorAndSend(pr, p, s, to, pr.findPath(s, to), optExpect, now)
	putBuffer(b)
}

// relay forwards a packet or fragment that is not for us. Only roots relay (for anyone, up
// to three hops); while relaying a packet between two peers they know paths to, they
// introduce the two to each other with RENDEZVOUS.
func (n *Node) relay(b []byte, dst, src ztaddr.Address, hops int, fragment bool) {
	if !n.topo.isRoot() {
		n.stats.drop(dropRelayRefused)
		return
	}
	if hops >= wire.RelayMaxHops {
		n.stats.drop(dropRelayRefused)
		return
	}
	now := n.now()
	var x *path
	if to := n.topo.peer(dst); to != nil {
		x = to.alivePath(now)
	}
	if x == nil {
		if root, rx := n.topo.bestRoot(now); root != nil && root.addr != src {
			x = rx
		}
	}
	if x == nil {
		n.stats.drop(dropNoRoute)
		return
	}
	if fragment {
		wire.Fragment(b).IncrementHops()
	} else {
		wire.Packet(b).IncrementHops()
	}
	n.stats.out(len(b))
	n.stats.relayed.Add(1)
	if err := x.send(b, now); err != nil {
		n.stats.drop(dropSendFailed)
		return
	}
	if !fragment {
		n.unite(src, dst, now)
	}
}

// unite sends each of two peers the other's physical address, so that they can try a direct
// path: at most every 30 s per pair, unless one of them moved (a restart on another port).
func (n *Node) unite(a, b ztaddr.Address, now int64) {
	pa, pb := n.topo.peer(a), n.topo.peer(b)
	if pa == nil || pb == nil {
		return
	}
	xa, xb := pa.alivePath(now), pb.alivePath(now)
	if xa == nil || xb == nil || xa.addr.Addr().Is4() != xb.addr.Addr().Is4() {
		return
	}
	if a > b {
		a, b, pa, pb, xa, xb = b, a, pb, pa, xb, xa
	}
	pair := [2]ztaddr.Address{a, b}
	n.unitesMu.Lock()
	if u, ok := n.unites[pair]; ok && now-u.at < minUniteInterval && u.at2 == [2]netip.AddrPort{xa.addr, xb.addr} {
		n.unitesMu.Unlock()
		return
	}
	if len(n.unites) > 65536 {
		clear(n.unites)
	}
	n.unites[pair] = unitedAt{now, [2]netip.AddrPort{xa.addr, xb.addr}}
	n.unitesMu.Unlock()
	n.log.Debug("RENDEZVOUS", "a", a.String(), "at_a", xa.addr, "b", b.String(), "at_b", xb.addr)
	first, second := [2]*peer{pa, pb}, [2]netip.AddrPort{xb.addr, xa.addr}
	others := [2]ztaddr.Address{b, a}
	order := []int{0, 1}
	if rand.IntN(2) == 1 {
		order = []int{1, 0}
	}
	for _, i := range order {
		n.sendMsg(first[i].addr, wire.VerbRendezvous,
			&wire.Rendezvous{Peer: others[i], Endpoint: ztaddr.InetAddressOf(second[i])}, 0)
	}
}

// unitedAt is when a pair was introduced and at which addresses.
type unitedAt struct {
	at  int64
	at2 [2]netip.AddrPort
}

const minUniteInterval = 30000
