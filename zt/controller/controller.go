package controller

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Timing, as in zerotier-one.
const (
	// minRequestInterval: a member's requests closer together than this are ignored.
	minRequestInterval = 1000
	// onlineWindow: a member that requested within this long is online and receives pushes.
	onlineWindow = 2 * 60000
	// statusExpiry: what is known of a member's last request is forgotten after this long.
	statusExpiry = 60 * 60000
)

// queueLength bounds the requests waiting for a worker; more are dropped (members retry).
const queueLength = 1024

// Config is what a Controller needs.
type Config struct {
	// Home is the node's home directory: records live in Home/controller.d.
	Home string
	// Identity is the node's identity, with its secret key: the controller signs with it and
	// controls the networks whose IDs start with its address.
	Identity *identity.Identity
	// Sender delivers answers: the node the controller is plugged into.
	Sender zt.ConfigSender
	// Logger receives errors and, at debug level, every answer. Nil logs nothing.
	Logger *slog.Logger
}

// Controller is a network controller: a zt.ConfigMaster answering members through a
// zt.ConfigSender, with its records in Home/controller.d and an HTTP API (Handler).
type Controller struct {
	id     *identity.Identity
	sender zt.ConfigSender
	log    *slog.Logger
	now    func() int64 // ms since the epoch

	mu   sync.Mutex // guards db
	db   *store
	rand *rand.Rand // for IPv6 pool addresses; guarded by mu

	statusMu sync.Mutex // guards status
	status   map[statusKey]*memberStatus

	queue     chan job
	done      chan struct{}
	closeOnce sync.Once
	workers   sync.WaitGroup

	stats counters
}

// Stats counts what a Controller did.
type Stats struct {
	Requests    uint64 // NETWORK_CONFIG_REQUESTs handed to the controller
	RateLimited uint64 // ignored for coming < 1 s after the member's previous one
	Dropped     uint64 // dropped because the queue was full or the controller closed
	Configs     uint64 // configurations sent (answers and pushes)
	Denied      uint64 // ACCESS_DENIED answers
	NotFound    uint64 // NOT_FOUND answers
	Revocations uint64 // revocations sent
	Failures    uint64 // requests not answered because of a local error
}

type counters struct {
	requests, rateLimited, dropped, configs, denied, notFound, revocations, failures atomic.Uint64
}

type statusKey struct {
	nwid ztaddr.NetworkID
	addr ztaddr.Address
}

// memberStatus is what the controller remembers of a member's last request.
type memberStatus struct {
	lastRequest int64
	// identity and metadata of the last authorized request, used to push configurations.
	identity *identity.Identity
	metadata *netconf.Dictionary
}

// job is one configuration to build: an answer (requestID ≠ 0) or a push.
type job struct {
	nwid      ztaddr.NetworkID
	requestID uint64
	from      *identity.Identity
	metadata  *netconf.Dictionary
}

// New opens the controller database under cfg.Home and starts the workers that answer
// requests. Unreadable records make it fail with an error naming each file.
func New(cfg Config) (*Controller, error) {
	if cfg.Identity == nil || !cfg.Identity.HasPrivate() {
		return nil, errors.New("controller: the identity must have its secret key")
	}
	if cfg.Sender == nil {
		return nil, errors.New("controller: no ConfigSender")
	}
	db, err := openStore(filepath.Join(cfg.Home, "controller.d"))
	if err != nil {
		return nil, err
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	c := &Controller{
		id:     cfg.Identity,
		sender: cfg.Sender,
		log:    cfg.Logger,
		now:    func() int64 { return time.Now().UnixMilli() },
		db:     db,
		rand:   rand.New(rand.NewChaCha8(seed)),
		status: map[statusKey]*memberStatus{},
		queue:  make(chan job, queueLength),
		done:   make(chan struct{}),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for range max(runtime.GOMAXPROCS(0), 2) {
		c.workers.Add(1)
		go c.work()
	}
	return c, nil
}

// Address is the controller's ZeroTier address, the first 10 hex digits of its networks' IDs.
func (c *Controller) Address() ztaddr.Address { return c.id.Address() }

// Stats returns the counters.
func (c *Controller) Stats() Stats {
	s := &c.stats
	return Stats{Requests: s.requests.Load(), RateLimited: s.rateLimited.Load(), Dropped: s.dropped.Load(),
		Configs: s.configs.Load(), Denied: s.denied.Load(), NotFound: s.notFound.Load(),
		Revocations: s.revocations.Load(), Failures: s.failures.Load()}
}

// Close stops answering; requests still queued are dropped.
func (c *Controller) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	c.workers.Wait()
	return nil
}

// Request implements zt.ConfigMaster. It never blocks: the answer is built by a worker.
func (c *Controller) Request(nwid ztaddr.NetworkID, requestID uint64, from *identity.Identity, metadata *netconf.Dictionary) {
	if nwid.Controller() != c.id.Address() || from == nil {
		return
	}
	c.stats.requests.Add(1)
	if metadata == nil {
		metadata = &netconf.Dictionary{}
	}
	if requestID != 0 {
		now := c.now()
		c.statusMu.Lock()
		k := statusKey{nwid, from.Address()}
		st := c.status[k]
		if st == nil {
			st = &memberStatus{}
			c.status[k] = st
		}
		limited := now-st.lastRequest <= minRequestInterval
		if !limited {
			st.lastRequest = now
		}
		c.statusMu.Unlock()
		if limited {
			c.stats.rateLimited.Add(1)
			return
		}
	}
	c.enqueue(job{nwid: nwid, requestID: requestID, from: from, metadata: metadata})
}

func (c *Controller) enqueue(j job) {
	select {
	case <-c.done:
		c.stats.dropped.Add(1)
		return
	default:
	}
	select {
	case c.queue <- j:
	default:
		c.stats.dropped.Add(1)
		c.log.Debug("controller: request queue full, dropping", "network", j.nwid, "member", j.from.Address())
	}
}

func (c *Controller) work() {
	defer c.workers.Done()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-c.done:
			return
		case j := <-c.queue:
			c.answer(j)
		case <-prune.C:
			c.pruneStatus()
		}
	}
}

// pruneStatus forgets members that have not requested for statusExpiry.
func (c *Controller) pruneStatus() {
	now := c.now()
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	maps.DeleteFunc(c.status, func(_ statusKey, st *memberStatus) bool { return now-st.lastRequest > statusExpiry })
}

// answer builds and sends the answer to one request or push.
func (c *Controller) answer(j job) {
	to := j.from.Address()
	nc, code, err := c.configure(j)
	if err != nil {
		c.stats.failures.Add(1)
		c.log.Error("controller: cannot answer", "network", j.nwid, "member", to, "err", err)
		return
	}
	if code != 0 {
		c.sendError(j, code)
		return
	}
	if err := signConfig(nc, c.id); err != nil {
		c.stats.failures.Add(1)
		c.log.Error("controller: cannot sign", "network", j.nwid, "member", to, "err", err)
		return
	}
	if err := c.sender.SendConfig(to, j.requestID, nc); err != nil {
		c.log.Warn("controller: cannot send config", "network", j.nwid, "member", to, "err", err)
		return
	}
	c.stats.configs.Add(1)
	c.log.Debug("controller: config sent", "network", j.nwid, "member", to, "revision", nc.Revision,
		"addresses", nc.AssignedPrefixes(), "push", j.requestID == 0)
}

func (c *Controller) sendError(j job, code wire.ErrorCode) {
	to := j.from.Address()
	switch code {
	case wire.ErrorObjectNotFound:
		c.stats.notFound.Add(1)
	case wire.ErrorNetworkAccessDenied:
		c.stats.denied.Add(1)
	}
	// An error cannot answer a push, except to ourselves (a node may be a member of its own
	// networks, and learns its status that way).
	if j.requestID == 0 && to != c.id.Address() {
		return
	}
	if err := c.sender.SendError(to, j.nwid, j.requestID, code); err != nil {
		c.log.Warn("controller: cannot send error", "network", j.nwid, "member", to, "err", err)
	}
	c.log.Debug("controller: request refused", "network", j.nwid, "member", to, "code", code)
}

// configure decides a request under the database lock: an unsigned config to send, an error
// code, or a local failure. The member record is created or updated as zerotier-one does.
func (c *Controller) configure(j job) (*netconf.NetworkConfig, wire.ErrorCode, error) {
	now := c.now()
	addr := j.from.Address()
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.db.network(j.nwid)
	if !ok {
		return nil, wire.ErrorObjectNotFound, nil
	}
	stored, existed := c.db.member(j.nwid, addr)
	var m *member
	if existed {
		m = stored.clone()
	} else {
		m = newMember(j.nwid, addr, now)
	}
	if m.Identity != "" {
		// A known member must present the same identity: an address collision must not take
		// over its membership.
		known, err := identity.Parse(m.Identity)
		if err != nil || !known.Equal(j.from) {
			return nil, wire.ErrorNetworkAccessDenied, nil
		}
	} else {
		m.Identity = j.from.Public().String()
	}
	m.ID, m.Address, m.NWID = addr.String(), addr.String(), j.nwid.String()

	if !m.Authorized {
		if how, cred, ok := c.autoAuthorization(n, j.metadata, now); ok {
			m.Authorized = true
			m.LastAuthorizedTime = now
			m.LastAuthorizedCredentialType, m.LastAuthorizedCredential = &how, cred
		}
	}
	if !m.Authorized {
		if _, err := c.db.saveMember(j.nwid, addr, m); err != nil {
			return nil, 0, err
		}
		return nil, wire.ErrorNetworkAccessDenied, nil
	}
	if j.requestID != 0 {
		md := j.metadata
		m.VMajor, m.VMinor = int64(md.Uint("majv", 0)), int64(md.Uint("minv", 0))
		m.VRev, m.VProto = int64(md.Uint("revv", 0)), int64(md.Uint("pv", 0))
		c.statusMu.Lock()
		if st := c.status[statusKey{j.nwid, addr}]; st != nil {
			st.identity, st.metadata = j.from, md
		}
		c.statusMu.Unlock()
	}
	nc := buildConfig(&configRequest{
		nwid:      j.nwid,
		network:   n,
		member:    m,
		newMember: !existed,
		identity:  j.from,
		metadata:  j.metadata,
		now:       now,
		taken:     c.takenAddresses(j.nwid),
		bridges:   c.activeBridges(j.nwid),
		rand:      c.rand,
	})
	if _, err := c.db.saveMember(j.nwid, addr, m); err != nil {
		return nil, 0, err
	}
	return nc, 0, nil
}

// autoAuthorization reports whether a member is let in without being authorized: on a public
// network, or by presenting (metadata "a" = "token:<t>") an unexpired token of the network.
func (c *Controller) autoAuthorization(n *network, md *netconf.Dictionary, now int64) (how string, cred *string, ok bool) {
	if !n.Private {
		return authByPublic, nil, true
	}
	token, isToken := strings.CutPrefix(md.String("a"), "token:")
	if !isToken || token == "" {
		return "", nil, false
	}
	if exp, ok := n.authTokenExpiry(token); ok && (exp == 0 || exp > uint64(now)) {
		return authByToken, &token, true
	}
	return "", nil, false
}

// takenAddresses returns a test for addresses assigned to any member of a network.
func (c *Controller) takenAddresses(nwid ztaddr.NetworkID) func(netip.Addr) bool {
	taken := map[netip.Addr]bool{}
	for _, m := range c.db.members(nwid) {
		for _, s := range m.IPAssignments {
			if a, ok := parseInet(s); ok {
				taken[a.IP] = true
			}
		}
	}
	return func(a netip.Addr) bool { return taken[a] }
}

// activeBridges lists the members marked as active bridges.
func (c *Controller) activeBridges(nwid ztaddr.NetworkID) []ztaddr.Address {
	var out []ztaddr.Address
	for _, m := range c.db.members(nwid) {
		if a, err := ztaddr.ParseAddress(m.ID); err == nil && m.ActiveBridge {
			out = append(out, a)
		}
	}
	return out
}

// pushMember sends a fresh config to a member that is online and was last authorized.
func (c *Controller) pushMember(nwid ztaddr.NetworkID, addr ztaddr.Address) {
	c.pushWhere(func(k statusKey) bool { return k.nwid == nwid && k.addr == addr })
}

// pushNetwork sends fresh configs to every online authorized member of a network.
func (c *Controller) pushNetwork(nwid ztaddr.NetworkID) {
	c.pushWhere(func(k statusKey) bool { return k.nwid == nwid })
}

func (c *Controller) pushWhere(match func(statusKey) bool) {
	now := c.now()
	var jobs []job
	c.statusMu.Lock()
	for k, st := range c.status {
		if match(k) && now-st.lastRequest < onlineWindow && st.metadata != nil {
			jobs = append(jobs, job{nwid: k.nwid, from: st.identity, metadata: st.metadata})
		}
	}
	c.statusMu.Unlock()
	for _, j := range jobs {
		c.enqueue(j)
	}
}

// revoke tells every online member of a network that target's certificates of membership
// issued until now are void, so that members drop its traffic at once.
func (c *Controller) revoke(nwid ztaddr.NetworkID, target ztaddr.Address) {
	now := c.now()
	var id [4]byte
	crand.Read(id[:])
	rev := &netconf.Revocation{
		ID:             binary.BigEndian.Uint32(id[:]),
		NetworkID:      nwid,
		Threshold:      now,
		Flags:          netconf.RevocationFastPropagate,
		Target:         target,
		CredentialType: netconf.CredentialCOM,
	}
	if err := rev.Sign(c.id); err != nil {
		c.log.Error("controller: cannot sign revocation", "network", nwid, "member", target, "err", err)
		return
	}
	var online []ztaddr.Address
	c.statusMu.Lock()
	for k, st := range c.status {
		if k.nwid == nwid && now-st.lastRequest < onlineWindow {
			online = append(online, k.addr)
		}
	}
	c.statusMu.Unlock()
	slices.Sort(online)
	for _, to := range online {
		if err := c.sender.SendRevocation(to, rev); err != nil {
			c.log.Warn("controller: cannot send revocation", "network", nwid, "to", to, "err", err)
			continue
		}
		c.stats.revocations.Add(1)
	}
	c.log.Debug("controller: revoked", "network", nwid, "member", target, "told", len(online))
}
