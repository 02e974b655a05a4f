package zt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// The software version we announce: zerotier-one 1.14.1's, with protocol version 12 so that
// 1.14 peers use AES-GMAC-SIV with us.
const (
	versionMajor    = 1
	versionMinor    = 14
	versionRevision = 1
)

// Config configures a Node.
type Config struct {
	// Home is the state directory (see DefaultHome): identity, planet, moons, cached network
	// configs and peers, in zerotier-one's layout. Required.
	Home string
	// Port is the UDP port. 0: DefaultPort if free, else the port this home used last, else
	// a random free one. PortAny: a random free one. Otherwise exactly this port.
	Port int
	// Bind lists the local addresses to listen on; empty means all (one dual-stack socket).
	Bind []netip.Addr
	// Planet, if not nil, is a serialized planet that replaces the home's planet file and
	// the built-in default (ZeroTier's "Earth").
	Planet []byte
	// RootEndpoints, if set, makes the node the only root of a planet of its own, reachable
	// at these UDP endpoints: the planet is created in Home on first start (signed with a
	// world key kept there, world.secret) and re-signed if the endpoints change. Give that
	// planet file to the nodes that are to use this root. Planet is ignored.
	RootEndpoints []netip.AddrPort
	// AllowLoopback lets loopback addresses be physical paths. zerotier-one never uses them;
	// enable it only for nodes of ours sharing one machine (tests, the offline demo).
	AllowLoopback bool
	// Logger receives state changes at Info and protocol detail at Debug (nil: slog.Default).
	Logger *slog.Logger
}

// Node is a ZeroTier node: one identity, its UDP sockets, its peers and the networks it
// joined. A node whose identity is a root of its planet acts as that root: it relays,
// introduces peers to each other and answers multicast gathers for everyone.
type Node struct {
	cfg  Config
	log  *slog.Logger
	home home
	id   *identity.Identity
	addr ztaddr.Address

	socks []*socket
	topo  *topology
	mcast *multicaster
	t     timing

	reasmMu sync.Mutex
	reasm   wire.Reassembler

	whoisMu   sync.Mutex
	whois     map[ztaddr.Address]*whoisWait // unknown addresses we asked roots about
	parked    int                           // packets parked in whois, in all
	txQueue   []*queuedPacket               // packets waiting for a peer's identity or a path
	queuedFor map[ztaddr.Address]int        // how many of them per destination
	flushMu   sync.Mutex                    // one flush at a time keeps per-destination order
	queued    atomic.Int64                  // len(txQueue), read without the lock

	expecting  [expectSlots]atomic.Uint32 // top halves of recently sent packet IDs
	rateMu     sync.Mutex
	newIDs     map[uint32]int64 // per source /24 (or IPv6 /48): identity checks this second
	validating map[ztaddr.Address]bool
	validateQ  chan *helloToValidate

	netsMu sync.RWMutex
	nets   map[ztaddr.NetworkID]*Network

	master atomic.Pointer[masterRef]

	unitesMu sync.Mutex
	unites   map[[2]ztaddr.Address]unitedAt // root: last RENDEZVOUS per pair

	selfMu         sync.Mutex
	surface        map[netip.AddrPort]int64 // our addresses as roots see them
	online         atomic.Bool
	collided       atomic.Bool   // a root reported an identity collision
	parkedReplayed atomic.Uint64 // packets from unknown senders handled after WHOIS
	lastRootIn     atomic.Int64
	stats          counters
	started        atomic.Bool
	closeOnce      sync.Once
	done           chan struct{}
	wg             sync.WaitGroup
	identityNew    bool
}

type masterRef struct{ m ConfigMaster }

// timing holds the protocol's periods (ms) so that tests can shorten them.
type timing struct {
	tick          time.Duration
	pingCheck     int64 // keepalives, root HELLOs, config refreshes
	configRetry   int64 // NETWORK_CONFIG_REQUEST while without a config
	configRefresh int64 // ... and with one
	likePeriod    int64 // MULTICAST_LIKE announcements
	gatherPeriod  int64
	housekeeping  int64
	whoisRetry    int64
	queueTimeout  int64 // parked and queued packets
	deferred      int64 // frames from a peer waiting for its credentials
	credentials   int64 // re-push credentials to a peer after this long
}

var defaultTiming = timing{
	tick:          250 * time.Millisecond,
	pingCheck:     5000,
	configRetry:   5000,
	configRefresh: 60000,
	likePeriod:    60000,
	gatherPeriod:  60000,
	housekeeping:  30000,
	whoisRetry:    500,
	queueTimeout:  5000,
	deferred:      5000,
	credentials:   500000,
}

// NewNode loads or creates the node's state in cfg.Home and binds its UDP sockets. Call
// Start to run it and Close to stop it.
func NewNode(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Home == "" {
		return nil, errors.New("zt: Config.Home is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	h := home(cfg.Home)
	if err := h.init(); err != nil {
		return nil, err
	}
	id, created, err := h.identity(ctx)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootEndpoints) > 0 {
		w, err := h.ensureRootPlanet(id, cfg.RootEndpoints)
		if err != nil {
			return nil, err
		}
		cfg.Planet = w.Bytes()
	}
	n := &Node{
		cfg: cfg, log: log.With("node", id.Address().String()), home: h, id: id, addr: id.Address(),
		topo: newTopology(id), mcast: newMulticaster(), t: defaultTiming,
		whois: map[ztaddr.Address]*whoisWait{}, queuedFor: map[ztaddr.Address]int{}, newIDs: map[uint32]int64{},
		validating: map[ztaddr.Address]bool{}, validateQ: make(chan *helloToValidate, validateQueueLength),
		nets: map[ztaddr.NetworkID]*Network{}, unites: map[[2]ztaddr.Address]unitedAt{},
		surface: map[netip.AddrPort]int64{}, done: make(chan struct{}), identityNew: created,
	}
	if err := n.loadWorlds(); err != nil {
		return nil, err
	}
	n.loadPeers()
	if n.socks, err = listen(cfg.Bind, cfg.Port, h.lastPort()); err != nil {
		return nil, err
	}
	_ = h.write([]byte(strconv.Itoa(int(n.socks[0].local.Port()))), 0o644, portFile)
	return n, nil
}

// loadWorlds installs the planet (Config.Planet, else the home's, else the built-in one; the
// built-in one also replaces an older version of itself) and the home's moons.
func (n *Node) loadWorlds() error {
	planet, source := n.cfg.Planet, "configured planet"
	if planet == nil {
		b, err := n.home.readOptional(planetFile)
		if err != nil {
			return err
		}
		planet, source = b, "planet "+n.home.path(planetFile)
	}
	for _, w := range []struct {
		b      []byte
		source string
	}{{planet, source}, {world.EarthPlanet, "built-in planet"}} {
		if w.b == nil {
			continue
		}
		p, _, err := world.Parse(w.b)
		if err == nil {
			_, err = n.topo.offerPlanet(p)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", w.source, err)
		}
	}
	names, err := n.home.list(moonsDir, ".moon")
	if err != nil {
		return err
	}
	for _, name := range names {
		b, err := n.home.readOptional(moonsDir, name)
		if err != nil {
			return err
		}
		w, _, err := world.Parse(b)
		if err == nil {
			_, err = n.topo.offerMoon(w)
		}
		if err != nil {
			n.log.Warn("ignoring moon", "file", n.home.path(moonsDir, name), "err", err)
		}
	}
	return nil
}

// Start runs the node: its receive loops and timers.
func (n *Node) Start() {
	if n.started.Swap(true) {
		return
	}
	attrs := []any{"address", n.addr.String(), "port", n.socks[0].local.Port()}
	if p := n.topo.getPlanet(); p != nil {
		attrs = append(attrs, "planet", p.ID, "roots", len(p.Roots))
	}
	if n.identityNew {
		attrs = append(attrs, "new_identity", true)
	}
	if n.topo.isRoot() {
		attrs = append(attrs, "role", "root")
	}
	n.log.Info("zerotier node started", attrs...)
	for _, s := range n.socks {
		n.wg.Add(1)
		go n.receiveLoop(s)
	}
	n.wg.Add(1)
	go n.timerLoop()
	for range runtime.GOMAXPROCS(0) { // identity checks are CPU-bound
		n.wg.Add(1)
		go n.validator()
	}
}

// Close stops the node, saving its peers. Networks stay cached in the home for the next run.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.done)
		for _, s := range n.socks {
			s.conn.Close()
		}
		n.wg.Wait()
		n.savePeers(n.now())
		n.netsMu.Lock()
		for _, nw := range n.nets {
			nw.close()
		}
		n.netsMu.Unlock()
	})
	return nil
}

func (n *Node) closed() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

func (n *Node) now() int64 { return time.Now().UnixMilli() }

// Address is the node's ZeroTier address.
func (n *Node) Address() ztaddr.Address { return n.addr }

// Identity is the node's identity (with its private key).
func (n *Node) Identity() *identity.Identity { return n.id }

// LocalAddresses are the UDP endpoints the node is bound to.
func (n *Node) LocalAddresses() []netip.AddrPort {
	var as []netip.AddrPort
	for _, s := range n.socks {
		as = append(as, s.local)
	}
	return as
}

// Port is the UDP port the node is bound to.
func (n *Node) Port() int { return int(n.socks[0].local.Port()) }

// Online reports whether a root has been heard from recently (a root counts itself online),
// and has not reported that our address belongs to another node.
func (n *Node) Online() bool { return (n.online.Load() || n.topo.isRoot()) && !n.collided.Load() }

// IsRoot reports whether this node is a root of its planet or of a moon.
func (n *Node) IsRoot() bool { return n.topo.isRoot() }

// Planet is the serialized planet the node uses.
func (n *Node) Planet() []byte { return n.topo.getPlanet().Bytes() }

// NodeInfo describes a node, like zerotier-cli info.
type NodeInfo struct {
	Address         ztaddr.Address
	PublicIdentity  string
	Online          bool
	Root            bool   // serving as a root of its planet or a moon
	Version         string // the zerotier-one version we speak as
	PlanetID        uint64
	PlanetTimestamp uint64
	Moons           []uint64
	LocalAddresses  []netip.AddrPort // bound UDP sockets
}

// Info describes the node.
func (n *Node) Info() NodeInfo {
	i := NodeInfo{Address: n.addr, PublicIdentity: n.id.String(), Online: n.Online(), Root: n.IsRoot(),
		Version: fmt.Sprintf("%d.%d.%d", versionMajor, versionMinor, versionRevision), LocalAddresses: n.LocalAddresses()}
	if p := n.topo.getPlanet(); p != nil {
		i.PlanetID, i.PlanetTimestamp = p.ID, p.Timestamp
	}
	for _, m := range n.topo.getMoons() {
		i.Moons = append(i.Moons, m.ID)
	}
	return i
}

// Counters returns the node's packet counters.
func (n *Node) Counters() Counters { return n.stats.snapshot() }

// Peers describes every known peer, ordered by address.
func (n *Node) Peers() []PeerInfo {
	now := n.now()
	var out []PeerInfo
	for _, p := range n.topo.allPeers() {
		out = append(out, p.info(now))
	}
	return out
}

// SetConfigMaster attaches a network controller: NETWORK_CONFIG_REQUESTs for networks whose
// ID starts with this node's address go to it. Set it before Start.
func (n *Node) SetConfigMaster(m ConfigMaster) {
	n.master.Store(&masterRef{m})
}

func (n *Node) configMaster() ConfigMaster {
	if r := n.master.Load(); r != nil {
		return r.m
	}
	return nil
}

// Join joins a network (or returns it if already joined). A config cached in the home is
// applied at once, so the network can be up before its controller answers.
func (n *Node) Join(nwid ztaddr.NetworkID) (*Network, error) {
	if nwid == 0 || nwid.Controller().IsReserved() {
		return nil, fmt.Errorf("join %s: invalid network ID", nwid)
	}
	n.netsMu.Lock()
	if nw := n.nets[nwid]; nw != nil {
		n.netsMu.Unlock()
		return nw, nil
	}
	nw := newNetwork(n, nwid)
	n.nets[nwid] = nw
	n.netsMu.Unlock()
	nw.loadCachedConfig()
	if n.started.Load() {
		nw.requestConfig(n.now())
	}
	return nw, nil
}

// Leave leaves a network and forgets its cached config.
func (n *Node) Leave(nwid ztaddr.NetworkID) error {
	n.netsMu.Lock()
	nw := n.nets[nwid]
	delete(n.nets, nwid)
	n.netsMu.Unlock()
	if nw == nil {
		return fmt.Errorf("leave %s: not joined", nwid)
	}
	nw.close()
	n.mcast.forgetNetwork(nwid)
	if err := n.home.remove(networksDir, networkFile(nwid)); err != nil {
		return fmt.Errorf("leave %s: %w", nwid, err)
	}
	n.log.Info("left network", "network", nwid.String())
	return nil
}

// Network returns a joined network, or nil.
func (n *Node) Network(nwid ztaddr.NetworkID) *Network {
	n.netsMu.RLock()
	defer n.netsMu.RUnlock()
	return n.nets[nwid]
}

// Networks lists the joined networks, ordered by ID.
func (n *Node) Networks() []*Network {
	n.netsMu.RLock()
	nws := make([]*Network, 0, len(n.nets))
	for _, nw := range n.nets {
		nws = append(nws, nw)
	}
	n.netsMu.RUnlock()
	sort.Slice(nws, func(i, j int) bool { return nws[i].id < nws[j].id })
	return nws
}

// receiveLoop reads datagrams from one socket until Close.
func (n *Node) receiveLoop(s *socket) {
	defer n.wg.Done()
	r := newBatchReader(s)
	var rx rxBuffers
	s.readLoop(r, func(k int, err error) {
		if err != nil {
			n.log.Debug("udp receive", "err", err)
			return
		}
		for i := range k {
			b, from, seg, ok := r.message(i)
			if !ok {
				n.stats.drop(dropMalformed)
				continue
			}
			if seg <= 0 {
				seg = len(b)
			}
			for len(b) > 0 {
				d := b[:min(seg, len(b))]
				b = b[len(d):]
				n.receive(s, from, d, &rx)
			}
		}
		n.endBursts()
	})
}

// endBursts ends the burst of frames delivered on every network (see Network.SetBurstEnd):
// called by every goroutine that delivers frames, after a read from the network.
func (n *Node) endBursts() {
	var buf [4]*Network
	nws := buf[:0]
	n.netsMu.RLock()
	for _, nw := range n.nets {
		nws = append(nws, nw)
	}
	n.netsMu.RUnlock()
	// Outside netsMu: the receiver may send, and sending may need it.
	for _, nw := range nws {
		nw.endBurst()
	}
}

// usableAddress reports whether a physical address may carry ZeroTier traffic: private,
// shared or global scope (loopback only if allowed), and not inside one of our virtual
// networks (which would tunnel ZeroTier through itself).
func (n *Node) usableAddress(a netip.AddrPort) bool {
	ip := a.Addr().Unmap()
	if !ip.IsValid() || a.Port() == 0 {
		return false
	}
	switch ztaddr.IPScope(ip) {
	case ztaddr.ScopePrivate, ztaddr.ScopePseudoPrivate, ztaddr.ScopeShared, ztaddr.ScopeGlobal:
	case ztaddr.ScopeLoopback:
		if !n.cfg.AllowLoopback {
			return false
		}
	default:
		return false
	}
	for _, nw := range n.Networks() {
		for _, p := range nw.assignedPrefixes() {
			if p.Contains(ip) {
				return false
			}
		}
	}
	return true
}

// socketFor picks the socket to reach addr from.
func (n *Node) socketFor(addr netip.Addr) *socket {
	for _, s := range n.socks {
		if s.canReach(addr) {
			return s
		}
	}
	return nil
}
