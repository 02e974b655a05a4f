package main

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/supervisor"
	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// instance is what a running ztnc-run reports on its control socket, /healthz and /metrics:
// its node (nil with --local), the networks with their stacks, the supervisors of its
// programs and its published ports. Parts are added as they start.
type instance struct {
	started time.Time
	home    string

	mu       sync.Mutex
	node     *zt.Node
	nets     []attachment // nw is nil for a --local network
	netset   *netset      // joins and leaves (nil: the networks are fixed, or there are none)
	attach   *attacher    // takes programs started by ztnc-run attach (nil: none)
	programs []*program
	pubs     []*publisher
}

// program is a supervised program of the instance.
type program struct {
	pid  int
	argv []string
	sup  *supervisor.Supervisor
}

func newInstance(home string) *instance {
	return &instance{started: time.Now(), home: home}
}

func (in *instance) setNetworks(node *zt.Node, atts []attachment) {
	in.mu.Lock()
	in.node, in.nets = node, slices.Clone(atts)
	in.mu.Unlock()
}

// addProgram records a supervised program; the returned function removes it.
func (in *instance) addProgram(p *program) (remove func()) {
	in.mu.Lock()
	in.programs = append(in.programs, p)
	in.mu.Unlock()
	return func() {
		in.mu.Lock()
		in.programs = slices.DeleteFunc(in.programs, func(q *program) bool { return q == p })
		in.mu.Unlock()
	}
}

func (in *instance) addPublisher(p *publisher) {
	in.mu.Lock()
	in.pubs = append(in.pubs, p)
	in.mu.Unlock()
}

// snapshot returns the parts under the lock.
func (in *instance) snapshot() (*zt.Node, []attachment, []*program, []*publisher) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.node, slices.Clone(in.nets), slices.Clone(in.programs), slices.Clone(in.pubs)
}

// JSON shapes: zerotier-one's names for what it has, ours under "ztnc".

type statusJSON struct {
	Address              string       `json:"address"`
	PublicIdentity       string       `json:"publicIdentity"`
	Online               bool         `json:"online"`
	TCPFallbackActive    bool         `json:"tcpFallbackActive"`
	VersionMajor         int          `json:"versionMajor"`
	VersionMinor         int          `json:"versionMinor"`
	VersionRev           int          `json:"versionRev"`
	VersionBuild         int          `json:"versionBuild"`
	Version              string       `json:"version"`
	Clock                int64        `json:"clock"`
	PlanetWorldID        uint64       `json:"planetWorldId"`
	PlanetWorldTimestamp uint64       `json:"planetWorldTimestamp"`
	Config               configJSON   `json:"config"`
	Ztnc                 instanceJSON `json:"ztnc"`
}

type configJSON struct {
	Settings settingsJSON `json:"settings"`
}

type settingsJSON struct {
	PrimaryPort           int      `json:"primaryPort"`
	HomeDir               string   `json:"homeDir"`
	ListeningOn           []string `json:"listeningOn"`
	PortMappingEnabled    bool     `json:"portMappingEnabled"`
	AllowTCPFallbackRelay bool     `json:"allowTcpFallbackRelay"`
}

// instanceJSON is our own part of the status.
type instanceJSON struct {
	PID        int             `json:"pid"`
	Uptime     float64         `json:"uptimeSeconds"`
	Programs   []programJSON   `json:"programs"`
	Supervisor supervisorJSON  `json:"supervisor"`
	Node       *countersJSON   `json:"node,omitempty"` // UDP datagrams of the node
	Published  []publishedJSON `json:"published"`
}

type programJSON struct {
	PID  int      `json:"pid"`
	Argv []string `json:"argv"`
}

// supervisorJSON sums the supervisors' counters.
type supervisorJSON struct {
	Calls             map[string]uint64 `json:"trappedCalls"`
	Continued         uint64            `json:"continuedCalls"`
	Failed            map[string]uint64 `json:"failedCalls"`
	Sockets           int               `json:"sockets"`
	Connections       uint64            `json:"connections"`
	ActiveConnections int64             `json:"activeConnections"`
	SpliceFailures    uint64            `json:"spliceFailures"`
}

type countersJSON struct {
	PacketsIn  uint64            `json:"packetsIn"`
	PacketsOut uint64            `json:"packetsOut"`
	BytesIn    uint64            `json:"bytesIn"`
	BytesOut   uint64            `json:"bytesOut"`
	Relayed    uint64            `json:"relayed,omitempty"`
	Drops      map[string]uint64 `json:"drops"`
}

func countersOf(c zt.Counters) *countersJSON {
	return &countersJSON{PacketsIn: c.PacketsIn, PacketsOut: c.PacketsOut, BytesIn: c.BytesIn, BytesOut: c.BytesOut, Relayed: c.Relayed, Drops: c.Drops}
}

type stackStatsJSON struct {
	FramesIn       uint64            `json:"framesIn"`
	FramesOut      uint64            `json:"framesOut"`
	BytesIn        uint64            `json:"bytesIn"`
	BytesOut       uint64            `json:"bytesOut"`
	Drops          map[string]uint64 `json:"drops"`
	TCPRetransmits uint64            `json:"tcpRetransmits"`
	TCPResetsSent  uint64            `json:"tcpResetsSent"`
}

// stackDrops names the stack's drop counters.
func stackDrops(c netstack.Counters) map[string]uint64 {
	return map[string]uint64{
		"ethertype": c.DropEtherType, "not-for-us": c.DropNotForUs, "oversize": c.DropOversize,
		"queue-full": c.DropQueueFull, "tx-error": c.DropTxError, "datagram-send": c.DropDatagramSend,
		"datagram-recv": c.DropDatagramRecv, "tcp-checksum": c.TCPChecksumError, "ip-malformed": c.IPMalformed,
	}
}

func stackStats(st *netstack.Stack) stackStatsJSON {
	c := st.Counters()
	return stackStatsJSON{FramesIn: c.FramesIn, FramesOut: c.FramesOut, BytesIn: c.BytesIn, BytesOut: c.BytesOut,
		Drops: stackDrops(c), TCPRetransmits: c.TCPRetransmits, TCPResetsSent: c.TCPResetsSent}
}

func (in *instance) status() statusJSON {
	node, _, progs, pubs := in.snapshot()
	major, minor, rev := zt.Version()
	s := statusJSON{
		VersionMajor: major, VersionMinor: minor, VersionRev: rev,
		Version: fmt.Sprintf("%d.%d.%d", major, minor, rev),
		Clock:   time.Now().UnixMilli(),
		Config:  configJSON{Settings: settingsJSON{HomeDir: in.home, ListeningOn: []string{}}},
		Ztnc: instanceJSON{
			PID:        os.Getpid(),
			Uptime:     time.Since(in.started).Seconds(),
			Programs:   []programJSON{},
			Supervisor: supervisorTotals(progs),
			Published:  publishedOf(pubs),
		},
	}
	for _, p := range progs {
		s.Ztnc.Programs = append(s.Ztnc.Programs, programJSON{p.pid, p.argv})
	}
	if node == nil {
		return s
	}
	s.Address = node.Address().String()
	s.PublicIdentity = node.Identity().Public().String()
	s.Online = node.Online()
	if w, _, err := world.Parse(node.Planet()); err == nil {
		s.PlanetWorldID, s.PlanetWorldTimestamp = w.ID, w.Timestamp
	}
	s.Config.Settings.PrimaryPort = node.Port()
	for _, a := range node.LocalAddresses() {
		s.Config.Settings.ListeningOn = append(s.Config.Settings.ListeningOn, a.String())
	}
	s.Ztnc.Node = countersOf(node.Counters())
	return s
}

func supervisorTotals(progs []*program) supervisorJSON {
	t := supervisorJSON{Calls: map[string]uint64{}, Failed: map[string]uint64{}}
	for _, p := range progs {
		st := p.sup.Stats()
		for k, v := range st.Calls {
			t.Calls[k] += v
		}
		for k, v := range st.Failed {
			t.Failed[k] += v
		}
		t.Continued += st.Continued
		t.Sockets += st.Sockets
		t.Connections += st.Connections
		t.ActiveConnections += st.ActiveConnections
		t.SpliceFailures += st.SpliceFailures
	}
	return t
}

type networkJSON struct {
	ID                     string             `json:"id"`
	NWID                   string             `json:"nwid"`
	MAC                    string             `json:"mac"`
	Name                   string             `json:"name"`
	Status                 string             `json:"status"`
	Type                   string             `json:"type"`
	MTU                    int                `json:"mtu"`
	DHCP                   bool               `json:"dhcp"`
	Bridge                 bool               `json:"bridge"`
	BroadcastEnabled       bool               `json:"broadcastEnabled"`
	PortError              int                `json:"portError"`
	NetconfRevision        uint64             `json:"netconfRevision"`
	PortDeviceName         string             `json:"portDeviceName"`
	AllowManaged           bool               `json:"allowManaged"`
	AllowGlobal            bool               `json:"allowGlobal"`
	AllowDefault           bool               `json:"allowDefault"`
	AllowDNS               bool               `json:"allowDNS"`
	AssignedAddresses      []string           `json:"assignedAddresses"`
	Routes                 []routeJSON        `json:"routes"`
	MulticastSubscriptions []multicastSubJSON `json:"multicastSubscriptions"`
	DNS                    dnsJSON            `json:"dns"`
	Ztnc                   networkStatsJSON   `json:"ztnc"`
}

type routeJSON struct {
	Target string  `json:"target"`
	Via    *string `json:"via"`
	Flags  int     `json:"flags"`
	Metric int     `json:"metric"`
}

type multicastSubJSON struct {
	MAC string `json:"mac"`
	ADI uint32 `json:"adi"`
}

type dnsJSON struct {
	Domain  string   `json:"domain"`
	Servers []string `json:"servers"`
}

// networkStatsJSON is our part of a network: frame counters of the node's port and of the
// stack, and the reason it is not up yet.
type networkStatsJSON struct {
	Ready   bool           `json:"ready"`
	Reason  string         `json:"reason,omitempty"`
	Frames  *countersJSON  `json:"frames,omitempty"`
	Stack   stackStatsJSON `json:"stack"`
	Address []string       `json:"stackAddresses"`
}

// portDeviceName stands where zerotier-one names the TAP device: there is none; the network
// lives in this process.
const portDeviceName = "ztnc"

func networkOf(node *zt.Node, a attachment) networkJSON {
	j := networkJSON{
		PortDeviceName: portDeviceName, AllowManaged: true,
		AssignedAddresses: []string{}, Routes: []routeJSON{}, MulticastSubscriptions: []multicastSubJSON{},
		DNS: dnsJSON{Servers: []string{}},
	}
	j.Ztnc.Stack = stackStats(a.stack)
	j.Ztnc.Address = []string{}
	for _, p := range a.stack.Addresses() {
		j.Ztnc.Address = append(j.Ztnc.Address, p.String())
	}
	if a.nw == nil {
		// A --local network: ours only, always up.
		mac := ztaddr.MAC(a.stack.MAC())
		j.ID, j.NWID, j.MAC, j.Name, j.Status, j.Type, j.MTU = "local", "local", mac.String(), "local", zt.StatusOK.String(), "PRIVATE", localMTU
		j.AssignedAddresses = j.Ztnc.Address
		j.Ztnc.Ready = true
		return j
	}
	s := a.nw.State()
	j.ID = s.ID.String()
	j.NWID = j.ID
	j.MAC = s.MAC.String()
	j.Name = s.Name
	j.Status = s.Status.String()
	j.Type = "PUBLIC"
	if s.Private {
		j.Type = "PRIVATE"
	}
	j.MTU = a.nw.MTU()
	j.BroadcastEnabled = s.BroadcastEnabled
	j.NetconfRevision = s.Revision
	for _, p := range s.Addresses {
		j.AssignedAddresses = append(j.AssignedAddresses, p.String())
	}
	for _, r := range s.Routes {
		rj := routeJSON{Target: r.Target.String(), Flags: int(r.Flags), Metric: int(r.Metric)}
		if r.Via.IsValid() {
			v := r.Via.String()
			rj.Via = &v
		}
		j.Routes = append(j.Routes, rj)
	}
	for _, g := range s.Subscriptions {
		j.MulticastSubscriptions = append(j.MulticastSubscriptions, multicastSubJSON{g.MAC.String(), g.ADI})
	}
	j.DNS.Domain = s.DNS.Domain
	for _, a := range s.DNS.Servers {
		j.DNS.Servers = append(j.DNS.Servers, a.String())
	}
	j.Ztnc.Frames = countersOf(a.nw.Counters())
	j.Ztnc.Ready = ready(s)
	if !j.Ztnc.Ready {
		var addr ztaddr.Address
		if node != nil {
			addr = node.Address()
		}
		j.Ztnc.Reason = waitingFor(addr, s)
	}
	return j
}

// waitingFor says what a network that is not up waits for.
func waitingFor(addr ztaddr.Address, s zt.NetworkState) string {
	switch s.Status {
	case zt.StatusAccessDenied:
		return fmt.Sprintf("ACCESS_DENIED: authorize %s on network %s", addr, s.ID)
	case zt.StatusNotFound:
		return fmt.Sprintf("NOT_FOUND: network %s does not exist on its controller %s", s.ID, s.ID.Controller())
	case zt.StatusOK:
		return fmt.Sprintf("network %s is OK but assigned no address to %s", s.ID, addr)
	}
	return fmt.Sprintf("%s: waiting for the config of network %s from its controller %s", s.Status, s.ID, s.ID.Controller())
}

func (in *instance) networks() []networkJSON {
	node, nets, _, _ := in.snapshot()
	out := []networkJSON{}
	for _, a := range nets {
		out = append(out, networkOf(node, a))
	}
	return out
}

// network returns one joined network.
func (in *instance) network(id string) (networkJSON, error) {
	for _, n := range in.networks() {
		if n.NWID == id {
			return n, nil
		}
	}
	return networkJSON{}, &apiError{http.StatusNotFound, "network " + id + " is not joined"}
}

type peerJSON struct {
	Address      string     `json:"address"`
	VersionMajor int        `json:"versionMajor"`
	VersionMinor int        `json:"versionMinor"`
	VersionRev   int        `json:"versionRev"`
	Version      string     `json:"version"`
	Latency      int64      `json:"latency"`
	Role         string     `json:"role"`
	IsBonded     bool       `json:"isBonded"`
	Tunneled     bool       `json:"tunneled"`
	Paths        []pathJSON `json:"paths"`
}

type pathJSON struct {
	Address       string `json:"address"`
	LastSend      int64  `json:"lastSend"`
	LastReceive   int64  `json:"lastReceive"`
	TrustedPathID int    `json:"trustedPathId"`
	Active        bool   `json:"active"`
	Expired       bool   `json:"expired"`
	Preferred     bool   `json:"preferred"`
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (in *instance) peers() []peerJSON {
	node, _, _, _ := in.snapshot()
	out := []peerJSON{}
	if node == nil {
		return out
	}
	for _, p := range node.Peers() {
		j := peerJSON{Address: p.Address.String(), VersionMajor: -1, VersionMinor: -1, VersionRev: -1,
			Version: "-1.-1.-1", Latency: -1, Role: p.Role, Paths: []pathJSON{}}
		var maj, mnr, rev int
		if _, err := fmt.Sscanf(p.Version, "%d.%d.%d", &maj, &mnr, &rev); err == nil {
			j.VersionMajor, j.VersionMinor, j.VersionRev, j.Version = maj, mnr, rev, p.Version
		}
		if p.Latency >= 0 {
			j.Latency = p.Latency.Milliseconds()
		}
		for _, pa := range p.Paths {
			j.Paths = append(j.Paths, pathJSON{Address: addrPortZT(pa.Address), LastSend: unixMilli(pa.LastSend),
				LastReceive: unixMilli(pa.LastReceive), Active: pa.Active, Expired: !pa.Active, Preferred: pa.Preferred})
		}
		out = append(out, j)
	}
	return out
}

// addrPortZT writes an endpoint as zerotier-one does: "ip/port".
func addrPortZT(ap netip.AddrPort) string {
	return fmt.Sprintf("%s/%d", ap.Addr().Unmap(), ap.Port())
}

// health reports whether every network is OK with an address, and why not.
func (in *instance) health() (ok bool, reasons []string) {
	_, nets, _, _ := in.snapshot()
	if len(nets) == 0 {
		return false, []string{"no network joined"}
	}
	for _, n := range in.networks() {
		if !n.Ztnc.Ready {
			reasons = append(reasons, n.Ztnc.Reason)
		}
	}
	return len(reasons) == 0, reasons
}

// join answers a join request: the network's stack starts, and the programs started from now
// on (ztnc-run attach) have it. Programs already running keep the networks they started with.
func (in *instance) join(id ztaddr.NetworkID) (networkJSON, error) {
	in.mu.Lock()
	node, ns := in.node, in.netset
	in.mu.Unlock()
	if node == nil {
		return networkJSON{}, &apiError{http.StatusBadRequest, "this ztnc-run runs on a --local network, without a ZeroTier node"}
	}
	if ns == nil {
		return networkJSON{}, &apiError{http.StatusNotImplemented, "this ztnc-run runs no programs: it joins no networks"}
	}
	a, err := ns.join(id)
	if err != nil {
		return networkJSON{}, err
	}
	return networkOf(node, a), nil
}

// leave leaves a network: the node forgets it, and its stack loses its addresses and routes,
// so the programs lose the network as they would an interface.
func (in *instance) leave(id ztaddr.NetworkID) error {
	in.mu.Lock()
	ns := in.netset
	in.mu.Unlock()
	if ns == nil {
		return errNotJoined(id)
	}
	return ns.leave(id)
}
