package zt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Status is a network's state, named as zerotier-one names it.
type Status int

// Network statuses.
const (
	StatusRequestingConfiguration Status = iota // no config yet
	StatusOK                                    // configured
	StatusAccessDenied                          // the controller refuses us (not authorized)
	StatusNotFound                              // the controller does not have this network
	StatusClientTooOld                          // the controller needs a newer protocol
	StatusAuthenticationRequired                // SSO login needed (not supported here)
)

var statusNames = [...]string{"REQUESTING_CONFIGURATION", "OK", "ACCESS_DENIED", "NOT_FOUND", "CLIENT_TOO_OLD",
	"AUTHENTICATION_REQUIRED"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ErrNetworkLeft is returned by a network's methods after Leave or Close.
var ErrNetworkLeft = errors.New("network left")

// Network is a joined virtual network. It is the Ethernet port a TCP/IP stack attaches to
// (its methods MAC, MTU, WriteFrame, SetReceiver, Subscribe and Unsubscribe implement
// netstack.Port), and it reports the configuration the controller assigns.
type Network struct {
	node *Node
	id   ztaddr.NetworkID
	mac  ztaddr.MAC
	log  *slog.Logger

	state atomic.Pointer[netState] // nil until configured

	mu          sync.Mutex
	failure     Status // set by controller errors, cleared by a config; 0 = none
	status      Status
	assembler   wire.ConfigAssembler
	lastRequest int64
	answered    bool // the controller sent a config or an error since we joined
	lastLikes   int64
	subs        map[ztaddr.MulticastGroup]int
	watchers    []chan struct{}
	closed      bool
	left        atomic.Bool // closed, for the frame path

	membersMu sync.RWMutex
	members   map[ztaddr.Address]*membership

	deferMu  sync.Mutex
	deferred []deferredFrame

	recvMu sync.Mutex
	recv   func(dst, src [6]byte, etherType uint16, payload []byte)
	// burstEnd is called after the frames of one read from the network, if any were
	// delivered since the last call (burstPending); both guarded by recvMu.
	burstEnd     func()
	burstPending bool

	stats counters
}

// netState is one applied config and what is derived from it; replaced whole on change.
type netState struct {
	gen         uint64
	config      *netconf.NetworkConfig
	prefixes    []netip.Prefix
	credentials []byte // our NETWORK_CREDENTIALS payload (private networks)
	unsupported bool   // what rule matches we do not implement evaluate to
}

func newNetwork(n *Node, nwid ztaddr.NetworkID) *Network {
	return &Network{node: n, id: nwid, mac: ztaddr.NodeMAC(n.addr, nwid), log: n.log.With("network", nwid.String()),
		subs: map[ztaddr.MulticastGroup]int{}, members: map[ztaddr.Address]*membership{}}
}

// ID is the network ID.
func (nw *Network) ID() ztaddr.NetworkID { return nw.id }

// MAC is our Ethernet address on the network (derived from our address and the network ID).
func (nw *Network) MAC() [6]byte { return nw.mac }

// MTU is the network's MTU: the largest IP packet it carries (the default until configured).
func (nw *Network) MTU() int {
	if st := nw.state.Load(); st != nil {
		return st.config.MTU
	}
	return netconf.DefaultMTU
}

// Counters returns the network's frame counters.
func (nw *Network) Counters() Counters { return nw.stats.snapshot() }

// Route is a managed route of a network.
type Route struct {
	Target netip.Prefix
	Via    netip.Addr // invalid for on-link routes
	Flags  uint16
	Metric uint16
}

// DNS is a network's DNS settings.
type DNS struct {
	Domain  string
	Servers []netip.Addr
}

// NetworkState is a snapshot of a network's status and configuration.
type NetworkState struct {
	ID     ztaddr.NetworkID
	MAC    ztaddr.MAC
	Status Status
	// The rest is from the controller's config (zero until one arrived).
	Name             string
	Private          bool
	MTU              int
	Addresses        []netip.Prefix // assigned addresses with their prefix lengths
	Routes           []Route
	DNS              DNS
	BroadcastEnabled bool
	Revision         uint64
	ConfigTime       time.Time // the controller's timestamp of the config
	Subscriptions    []ztaddr.MulticastGroup
}

// State returns the network's current status and configuration.
func (nw *Network) State() NetworkState {
	nw.mu.Lock()
	s := NetworkState{ID: nw.id, MAC: nw.mac, Status: nw.status, MTU: netconf.DefaultMTU}
	nw.mu.Unlock()
	st := nw.state.Load()
	if st == nil {
		return s
	}
	c := st.config
	s.Name, s.Private, s.MTU, s.Revision = c.Name, c.IsPrivate(), c.MTU, c.Revision
	s.BroadcastEnabled, s.ConfigTime = c.BroadcastEnabled(), time.UnixMilli(c.Timestamp)
	s.Addresses = slices.Clone(st.prefixes)
	for _, r := range c.Routes {
		p, ok := r.Target.Prefix()
		if !ok {
			continue
		}
		rt := Route{Target: p, Flags: r.Flags, Metric: r.Metric}
		if r.Via.AddrPort.IsValid() {
			rt.Via = r.Via.AddrPort.Addr()
		}
		s.Routes = append(s.Routes, rt)
	}
	s.DNS.Domain = c.DNS.Domain
	for _, a := range c.DNS.Servers {
		if a.AddrPort.IsValid() {
			s.DNS.Servers = append(s.DNS.Servers, a.AddrPort.Addr())
		}
	}
	s.Subscriptions = nw.groups(st)
	return s
}

// Notify returns a channel that receives a value after changes of the network's status or
// configuration (changes in quick succession may be coalesced into one). It is closed when
// the network is left. Each call makes a new channel, so several parties can watch.
func (nw *Network) Notify() <-chan struct{} {
	ch := make(chan struct{}, 1)
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.closed {
		close(ch)
		return ch
	}
	nw.watchers = append(nw.watchers, ch)
	return ch
}

// WaitReady waits until the network is usable: status OK with at least one assigned address.
// It returns the state then, or the last state and ctx's error (or ErrNetworkLeft).
func (nw *Network) WaitReady(ctx context.Context) (NetworkState, error) {
	ch := nw.Notify()
	defer nw.unwatch(ch)
	for {
		st := nw.State()
		if st.Status == StatusOK && len(st.Addresses) > 0 {
			return st, nil
		}
		select {
		case _, ok := <-ch:
			if !ok {
				return nw.State(), ErrNetworkLeft
			}
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

func (nw *Network) unwatch(ch <-chan struct{}) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.watchers = slices.DeleteFunc(nw.watchers, func(c chan struct{}) bool { return c == ch })
}

// notifyLocked wakes the watchers; nw.mu is held.
func (nw *Network) notifyLocked() {
	for _, ch := range nw.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (nw *Network) close() {
	nw.mu.Lock()
	if !nw.closed {
		nw.closed = true
		nw.left.Store(true)
		for _, ch := range nw.watchers {
			close(ch)
		}
		nw.watchers = nil
	}
	nw.mu.Unlock()
	nw.SetReceiver(nil)
}

func (nw *Network) assignedPrefixes() []netip.Prefix {
	if st := nw.state.Load(); st != nil {
		return st.prefixes
	}
	return nil
}

// setStatusLocked recomputes the status and reports it if it changed; nw.mu is held.
func (nw *Network) setStatusLocked() {
	s := StatusRequestingConfiguration
	switch {
	case nw.failure != 0:
		s = nw.failure
	case nw.state.Load() != nil:
		s = StatusOK
	}
	if s == nw.status {
		return
	}
	nw.status = s
	attrs := []any{"status", s.String()}
	if st := nw.state.Load(); s == StatusOK && st != nil {
		attrs = append(attrs, "name", st.config.Name, "addresses", fmt.Sprint(st.prefixes), "mtu", st.config.MTU)
	}
	if s == StatusAccessDenied {
		attrs = append(attrs, "hint", "authorize "+nw.node.addr.String()+" on the controller")
	}
	nw.log.Info("network status", attrs...)
	nw.notifyLocked()
}

// setFailure records a controller's refusal.
func (nw *Network) setFailure(s Status) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.failure, nw.answered = s, true
	nw.setStatusLocked()
}

// loadCachedConfig applies the config saved by an earlier run, if any.
func (nw *Network) loadCachedConfig() {
	b, err := nw.node.home.readOptional(networksDir, networkFile(nw.id))
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return // none, or zerotier-one's "join at start" marker
	}
	if err := nw.applyConfig(b, true); err != nil {
		nw.log.Warn("ignoring cached config", "err", err)
	}
}

// applyConfig installs a complete config dictionary (checked to be for us and this
// network) and, unless it came from the cache, saves it for the next run.
func (nw *Network) applyConfig(dict []byte, cached bool) error {
	c, err := netconf.ParseNetworkConfig(netconf.ParseDictionary(dict))
	if err != nil {
		return err
	}
	if c.NetworkID != nw.id || c.IssuedTo != nw.node.addr {
		return fmt.Errorf("%w: config for %s/%s", netconf.ErrBadConfig, c.NetworkID, c.IssuedTo)
	}
	st := &netState{config: c, prefixes: c.AssignedPrefixes(), unsupported: c.Flags&netconf.FlagRulesResultOfUnsupported != 0}
	if c.IsPrivate() && c.COM != nil {
		creds := &wire.NetworkCredentials{COMs: []*netconf.COM{c.COM}, Capabilities: c.Capabilities, Tags: c.Tags, COOs: c.COOs}
		st.credentials = creds.Append(nil)
	}
	nw.mu.Lock()
	if nw.closed {
		nw.mu.Unlock()
		return ErrNetworkLeft
	}
	old := nw.state.Load()
	if old != nil {
		st.gen = old.gen + 1
	}
	nw.state.Store(st)
	nw.failure = 0
	nw.answered = nw.answered || !cached
	changed := old == nil || !slices.Equal(old.prefixes, st.prefixes) || old.config.MTU != c.MTU ||
		old.config.Name != c.Name || old.config.Revision != c.Revision
	if changed {
		nw.notifyLocked()
	}
	nw.setStatusLocked()
	nw.mu.Unlock()
	if changed && old != nil {
		nw.log.Info("network config updated", "revision", c.Revision, "addresses", fmt.Sprint(st.prefixes))
	}
	if !cached {
		if err := nw.node.home.write(dict, 0o600, networksDir, networkFile(nw.id)); err != nil {
			nw.log.Warn("caching config", "err", err)
		}
	}
	nw.announceLikes(nw.node.now())
	return nil
}

// requestConfig asks the controller for our config: over the network, or straight to our
// own ConfigMaster if we are the controller.
func (nw *Network) requestConfig(now int64) {
	nw.mu.Lock()
	nw.lastRequest = now
	nw.mu.Unlock()
	n := nw.node
	meta := requestMetadata()
	ctrl := nw.id.Controller()
	if ctrl == n.addr {
		if m := n.configMaster(); m != nil {
			go m.Request(nw.id, localRequestID, n.id.Public(), meta)
		} else {
			nw.setFailure(StatusNotFound)
		}
		return
	}
	q := &wire.ConfigRequest{NetworkID: nw.id, Metadata: meta.Bytes()}
	if st := nw.state.Load(); st != nil {
		q.Revision, q.Timestamp = st.config.Revision, uint64(st.config.Timestamp)
	}
	nw.log.Debug("NETWORK_CONFIG_REQUEST", "controller", ctrl.String())
	n.sendMsg(ctrl, wire.VerbNetworkConfigRequest, q, optCompress|optExpect)
}

// localRequestID is the request ID our own ConfigMaster sees for our own requests.
const localRequestID = 1

func requestMetadata() *netconf.Dictionary {
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "x86", "arm": "armv7"}[runtime.GOARCH]
	if arch == "" {
		arch = runtime.GOARCH
	}
	return netconf.RequestMetadata(wire.ProtocolVersion, versionMajor, versionMinor, versionRevision, runtime.GOOS+"/"+arch, "")
}

// onConfigChunk files a chunk of a config from the controller (or relayed by a member) and
// applies the config when complete. pushID is the packet ID of an unsolicited
// NETWORK_CONFIG (acknowledged when complete), 0 for an answer to our request.
func (nw *Network) onConfigChunk(c *wire.ConfigChunk, from *peer, pushID uint64) {
	n := nw.node
	ctrl := nw.controllerIdentity()
	if ctrl == nil {
		n.askWhois(nw.id.Controller())
		return
	}
	nw.mu.Lock()
	dict, updateID, err := nw.assembler.Add(c, from.addr, ctrl)
	nw.mu.Unlock()
	if err != nil {
		nw.stats.drop(dropBadConfig)
		nw.log.Warn("config chunk refused", "from", from.addr.String(), "err", err)
		return
	}
	if dict == nil {
		return
	}
	if err := nw.applyConfig(dict, false); err != nil {
		nw.stats.drop(dropBadConfig)
		nw.log.Warn("config refused", "err", err)
		return
	}
	if pushID != 0 {
		n.sendMsg(from.addr, wire.VerbOK, &okMessage{wire.VerbEcho, pushID, &wire.ConfigAck{NetworkID: nw.id, UpdateID: updateID}}, 0)
	}
}

func (nw *Network) controllerIdentity() *identity.Identity {
	ctrl := nw.id.Controller()
	if ctrl == nw.node.addr {
		return nw.node.id
	}
	if p := nw.node.topo.peer(ctrl); p != nil {
		return p.id
	}
	return nil
}

func (n *Node) onNetworkConfig(in *inbound) {
	c, err := wire.ParseConfigChunk(in.pkt.Payload())
	if err != nil || c.Legacy {
		n.stats.drop(dropMalformed)
		return
	}
	if nw := n.Network(c.NetworkID); nw != nil {
		nw.onConfigChunk(c, in.peer, in.pkt.ID())
	}
}

// timers does the network's periodic work: config requests (every few seconds until the
// controller answered, or while it refuses us, then a refresh every minute) and multicast
// announcements. A config from the cache does not count as an answer: the controller may have
// deauthorized us meanwhile.
func (nw *Network) timers(now int64) {
	t := nw.node.t
	nw.mu.Lock()
	interval := t.configRefresh
	if !nw.answered || nw.failure != 0 {
		interval = t.configRetry
	}
	due := now-nw.lastRequest >= interval
	likes := now-nw.lastLikes >= t.likePeriod
	nw.mu.Unlock()
	if due {
		nw.requestConfig(now)
	}
	if likes {
		nw.announceLikes(now)
	}
	nw.expireDeferred(now)
	if st := nw.state.Load(); st != nil {
		for _, g := range nw.node.mcast.regather(nw.id, now, regatherPeriod) {
			nw.gather(st, g, uint32(st.config.MulticastLimit+1))
		}
	}
}

// SetReceiver installs the function frames from the network are delivered to (nil detaches).
func (nw *Network) SetReceiver(fn func(dst, src [6]byte, etherType uint16, payload []byte)) {
	nw.recvMu.Lock()
	nw.recv = fn
	nw.recvMu.Unlock()
}

// SetBurstEnd installs the function called after the last frame of each burst delivered to
// the receiver (nil detaches). A burst is what one read from the network brought, and frames
// are delivered only from the node's own goroutines, never from inside WriteFrame(s): this
// makes *Network a netstack.BurstPort.
func (nw *Network) SetBurstEnd(fn func()) {
	nw.recvMu.Lock()
	nw.burstEnd = fn
	nw.recvMu.Unlock()
}

// deliver hands a frame to the receiver.
func (nw *Network) deliver(dst, src ztaddr.MAC, etherType uint16, payload []byte) {
	nw.recvMu.Lock()
	defer nw.recvMu.Unlock()
	if nw.recv == nil {
		nw.stats.drop(dropNoReceiver)
		return
	}
	nw.stats.in(len(payload))
	nw.recv(dst, src, etherType, payload)
	nw.burstPending = true
}

// endBurst tells the receiver that a burst of frames is complete.
func (nw *Network) endBurst() {
	nw.recvMu.Lock()
	defer nw.recvMu.Unlock()
	if nw.burstPending && nw.burstEnd != nil {
		nw.burstEnd()
	}
	nw.burstPending = false
}

// WriteFrame sends an Ethernet frame from the stack to the network: unicast to the member
// whose MAC dst is, multicast and broadcast to the group's members. Frames the network
// cannot carry (no config yet, rules, unknown destinations) are dropped and counted, as an
// Ethernet would; an error means the network is gone or the frame is malformed.
func (nw *Network) WriteFrame(dst, src [6]byte, etherType uint16, payload []byte) error {
	return nw.writeFrame(nil, dst, src, etherType, payload)
}

// WriteFrames sends whole Ethernet frames (14-byte header, then the payload) as WriteFrame
// does, with as few system calls as it can: the unicast frames' packets are batched per socket
// and leave together (as segmentation-offload sends where the kernel can). It stops at the
// first error.
func (nw *Network) WriteFrames(frames [][]byte) error {
	tx := txSets.Get().(*txSet)
	tx.now = nw.node.now()
	defer tx.flush(nw.node)
	for _, f := range frames {
		if len(f) < ethHeaderSize {
			nw.stats.drop(dropBadFrame)
			return fmt.Errorf("frame of %d bytes has no Ethernet header", len(f))
		}
		if err := nw.writeFrame(tx, [6]byte(f[0:6]), [6]byte(f[6:12]), binary.BigEndian.Uint16(f[12:14]), f[ethHeaderSize:]); err != nil {
			return err
		}
	}
	return nil
}

const ethHeaderSize = 14

// writeFrame is WriteFrame, adding unicast packets to tx when it is not nil.
func (nw *Network) writeFrame(tx *txSet, dst, src [6]byte, etherType uint16, payload []byte) error {
	if nw.left.Load() {
		return ErrNetworkLeft
	}
	st := nw.state.Load()
	if st == nil {
		nw.stats.drop(dropNoConfig)
		return nil
	}
	if len(payload) > st.config.MTU {
		nw.stats.drop(dropBadFrame)
		return fmt.Errorf("frame of %d bytes exceeds the MTU %d", len(payload), st.config.MTU)
	}
	if src != nw.mac {
		nw.stats.drop(dropBadFrame) // we are no bridge
		return nil
	}
	n := nw.node
	to := ztaddr.MAC(dst)
	if to.IsMulticast() {
		nw.sendMulticast(st, to, etherType, payload)
		return nil
	}
	addr, ok := to.NodeAddress(nw.id)
	if !ok || addr == n.addr || addr.IsReserved() {
		nw.stats.drop(dropBadFrame)
		return nil
	}
	if !nw.filter(st, frameMeta{from: n.addr, to: addr, src: nw.mac, dst: to, etherType: etherType}, payload, false) {
		nw.stats.drop(dropRulesOut)
		return nil
	}
	now := tx.clock(n)
	nw.pushCredentialsTo(addr, false, now)
	p, b := n.newPacket(addr, wire.VerbFrame)
	p = wire.AppendFrameHeader(p, nw.id, etherType)
	p = append(p, payload...)
	if tx != nil {
		n.sendPacketVia(tx, addr, p, 0)
		tx.keep(b)
	} else {
		n.sendPacket(addr, p, 0)
		putBuffer(b)
	}
	nw.stats.out(len(payload))
	return nil
}

// frameMeta is who a frame is from and to, for the rules and the gate.
type frameMeta struct {
	from, to  ztaddr.Address
	src, dst  ztaddr.MAC
	etherType uint16
}

func (n *Node) networkFor(nwid ztaddr.NetworkID) (*Network, *netState) {
	nw := n.Network(nwid)
	if nw == nil {
		n.stats.drop(dropNoNetwork)
		return nil, nil
	}
	st := nw.state.Load()
	if st == nil {
		nw.stats.drop(dropNoConfig)
		return nil, nil
	}
	return nw, st
}

func (n *Node) onFrame(in *inbound) {
	f, err := wire.ParseFrame(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	nw, st := n.networkFor(f.NetworkID)
	if nw == nil || !nw.admit(in, st) {
		return
	}
	m := frameMeta{from: in.peer.addr, to: n.addr, src: ztaddr.NodeMAC(in.peer.addr, nw.id), dst: nw.mac, etherType: f.EtherType}
	if !nw.filter(st, m, f.Data, true) {
		nw.stats.drop(dropRulesIn)
		return
	}
	nw.deliver(m.dst, m.src, f.EtherType, f.Data)
}

func (n *Node) onExtFrame(in *inbound) {
	f, err := wire.ParseExtFrame(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	nw, st := n.networkFor(f.NetworkID)
	if nw == nil {
		return
	}
	if f.COM != nil {
		nw.addCOM(f.COM, in.now)
	}
	if !nw.admit(in, st) {
		return
	}
	if f.Source.IsZero() || f.Source.IsMulticast() || f.Source == nw.mac ||
		(f.Source != ztaddr.NodeMAC(in.peer.addr, nw.id) && !isActiveBridge(st, in.peer.addr)) ||
		(f.Destination != nw.mac && !f.Destination.IsMulticast()) {
		nw.stats.drop(dropBadFrame)
		return
	}
	m := frameMeta{from: in.peer.addr, to: n.addr, src: f.Source, dst: f.Destination, etherType: f.EtherType}
	if !nw.filter(st, m, f.Data, true) {
		nw.stats.drop(dropRulesIn)
		return
	}
	nw.deliver(f.Destination, f.Source, f.EtherType, f.Data)
	if f.Flags&wire.ExtFrameFlagPlsAck != 0 {
		n.reply(in, wire.VerbOK, &okMessage{wire.VerbExtFrame, in.pkt.ID(), &wire.ExtFrameOK{NetworkID: nw.id}}, 0)
	}
}

func isActiveBridge(st *netState, a ztaddr.Address) bool {
	return slices.Contains(st.config.SpecialistsWith(netconf.SpecialistActiveBridge), a)
}
