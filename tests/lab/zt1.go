package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// ZT1BinEnv names the environment variable that points to a zerotier-one 1.14 binary.
const ZT1BinEnv = "ZT1_BIN"

// ZT1Bin returns the zerotier-one binary named by $ZT1_BIN, and skips t when it is unset or not
// an executable file, or when the lab cannot run.
func ZT1Bin(t T) string {
	t.Helper()
	bin := os.Getenv(ZT1BinEnv)
	if bin == "" {
		t.Skipf("lab: %s not set (a zerotier-one 1.14 binary runs the interop tests)", ZT1BinEnv)
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Skipf("lab: %s=%s is not an executable file", ZT1BinEnv, bin)
	}
	Require(t)
	return bin
}

// ZT1Config configures StartZT1.
type ZT1Config struct {
	// Home is the node's home; nil means NewLabHome(t, ""): LabPlanet and a fresh identity.
	Home *Home
	// Port is the primary UDP port and the local API's TCP port; 0 means 9993.
	Port int
	// AllowManagementFrom lists CIDRs besides loopback allowed to use the local API.
	AllowManagementFrom []string
}

// ZT1 is a zerotier-one process running in a lab host.
type ZT1 struct {
	Host *Host
	Home *Home
	Port int
	Proc *Proc

	address string
	token   string
}

var _ Member = (*ZT1)(nil)

// zt1StartTimeout bounds how long zerotier-one takes to answer on its local API.
const zt1StartTimeout = 30 * time.Second

// StartZT1 writes local.conf into the home (fixed port, no secondary port, no UPnP/NAT-PMP, no
// TCP fallback relay: nothing but the lab's UDP), runs `$ZT1_BIN -U home` in h and waits until
// its local API answers. The test's cleanup stops it.
func StartZT1(t T, h *Host, cfg ZT1Config) *ZT1 {
	t.Helper()
	bin := ZT1Bin(t)
	if cfg.Home == nil {
		cfg.Home = NewLabHome(t, "")
	}
	if cfg.Port == 0 {
		cfg.Port = 9993
	}
	settings := map[string]any{
		"primaryPort":           cfg.Port,
		"allowSecondaryPort":    false,
		"portMappingEnabled":    false,
		"allowTcpFallbackRelay": false,
	}
	if len(cfg.AllowManagementFrom) > 0 {
		settings["allowManagementFrom"] = cfg.AllowManagementFrom
	}
	conf, _ := json.Marshal(map[string]any{"settings": settings})
	cfg.Home.write(t, "local.conf", string(conf), 0o644)

	z := &ZT1{Host: h, Home: cfg.Home, Port: cfg.Port}
	z.Proc = h.Start(t, bin, "-U", cfg.Home.Dir)
	token, err := WaitFile(cfg.Home.Path("authtoken.secret"), zt1StartTimeout)
	if err != nil {
		t.Fatalf("zerotier-one in %s: %v\n%s", h.Name, err, z.Proc.Output())
	}
	z.token = strings.TrimSpace(string(token))
	var st ZT1Status
	err = z.poll(zt1StartTimeout, func() (err error) {
		st, err = z.Status(context.Background())
		return err
	})
	if err != nil {
		t.Fatalf("zerotier-one in %s: local API: %v", h.Name, err)
	}
	z.address = st.Address
	t.Logf("zerotier-one %s in %s: %s:%d, home %s", st.Address, h.Name, h.Addr, cfg.Port, cfg.Home.Dir)
	return z
}

// Address is the node's ZeroTier address.
func (z *ZT1) Address() string { return z.address }

// Stop stops the zerotier-one process.
func (z *ZT1) Stop() error { return z.Proc.Stop() }

// ZT1Status is the local API's GET /status (zerotier-cli info -j), in part.
type ZT1Status struct {
	Address              string `json:"address"`
	PublicIdentity       string `json:"publicIdentity"`
	Online               bool   `json:"online"`
	Version              string `json:"version"`
	PlanetWorldID        uint64 `json:"planetWorldId"`
	PlanetWorldTimestamp int64  `json:"planetWorldTimestamp"`
	Config               struct {
		Settings struct {
			PrimaryPort int      `json:"primaryPort"`
			ListeningOn []string `json:"listeningOn"`
		} `json:"settings"`
	} `json:"config"`
}

// ZT1Network is one network of GET /network (zerotier-cli listnetworks -j), in part.
type ZT1Network struct {
	ID                string     `json:"id"`
	Name              string     `json:"name"`
	Status            string     `json:"status"` // REQUESTING_CONFIGURATION, OK, ACCESS_DENIED, NOT_FOUND, PORT_ERROR, ...
	Type              string     `json:"type"`   // PRIVATE or PUBLIC
	MAC               string     `json:"mac"`
	MTU               int        `json:"mtu"`
	PortDeviceName    string     `json:"portDeviceName"` // the TAP device, zt...
	PortError         int        `json:"portError"`
	NetconfRevision   int        `json:"netconfRevision"`
	AssignedAddresses []string   `json:"assignedAddresses"` // "203.0.113.17/24"
	Routes            []ZT1Route `json:"routes"`
}

// ZT1Route is a managed route of a network.
type ZT1Route struct {
	Target string  `json:"target"`
	Via    *string `json:"via"`
}

// ZT1Peer is one peer of GET /peer (zerotier-cli listpeers -j), in part.
type ZT1Peer struct {
	Address string    `json:"address"`
	Role    string    `json:"role"` // LEAF, MOON or PLANET
	Latency int       `json:"latency"`
	Version string    `json:"version"`
	Paths   []ZT1Path `json:"paths"`
}

// ZT1Path is a physical path to a peer.
type ZT1Path struct {
	Address     string `json:"address"` // "ip/port"
	Active      bool   `json:"active"`
	Expired     bool   `json:"expired"`
	Preferred   bool   `json:"preferred"`
	LastSend    int64  `json:"lastSend"`
	LastReceive int64  `json:"lastReceive"`
}

// IPv4 returns the network's first assigned IPv4 address.
func (n ZT1Network) IPv4() (netip.Prefix, bool) {
	for _, a := range n.AssignedAddresses {
		if p, err := netip.ParsePrefix(a); err == nil && p.Addr().Is4() {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// Status is GET /status.
func (z *ZT1) Status(ctx context.Context) (st ZT1Status, err error) {
	return st, z.API(ctx, "GET", "/status", nil, &st)
}

// Networks is GET /network.
func (z *ZT1) Networks(ctx context.Context) (ns []ZT1Network, err error) {
	return ns, z.API(ctx, "GET", "/network", nil, &ns)
}

// Network is GET /network/<nwid>.
func (z *ZT1) Network(ctx context.Context, nwid string) (n ZT1Network, err error) {
	return n, z.API(ctx, "GET", "/network/"+nwid, nil, &n)
}

// Peers is GET /peer.
func (z *ZT1) Peers(ctx context.Context) (ps []ZT1Peer, err error) {
	return ps, z.API(ctx, "GET", "/peer", nil, &ps)
}

// Join joins network nwid (zerotier-cli join).
func (z *ZT1) Join(ctx context.Context, nwid string) error {
	return z.API(ctx, "POST", "/network/"+nwid, struct{}{}, nil)
}

// ZT1Settings are a member's local settings for one network (zerotier-cli set), kept in
// networks.d/<nwid>.local.conf. zerotier-one's defaults: only AllowManaged. Addresses from
// 2001:db8::/32 count as global: a network that assigns them needs AllowGlobal.
type ZT1Settings struct {
	AllowManaged bool `json:"allowManaged"`
	AllowGlobal  bool `json:"allowGlobal"`
	AllowDefault bool `json:"allowDefault"`
	AllowDNS     bool `json:"allowDNS"`
}

// Configure joins network nwid if needed and applies settings to it.
func (z *ZT1) Configure(ctx context.Context, nwid string, settings ZT1Settings) error {
	return z.API(ctx, "POST", "/network/"+nwid, settings, nil)
}

// Leave leaves network nwid (zerotier-cli leave).
func (z *ZT1) Leave(ctx context.Context, nwid string) error {
	return z.API(ctx, "DELETE", "/network/"+nwid, nil, nil)
}

// Controller returns a client for the node's embedded network controller, which serves the
// networks whose IDs start with the node's address.
func (z *ZT1) Controller() *Controller {
	return &Controller{
		Address: z.address,
		URL:     "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(z.Port)),
		Token:   z.token,
		Client:  z.Host.HTTPClient(),
	}
}

// API calls the local API: body (if not nil) is sent as JSON, the answer decoded into out
// (if not nil). The connection starts in the node's namespace, from loopback.
func (z *ZT1) API(ctx context.Context, method, path string, body, out any) error {
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(z.Port)) + path
	return callJSON(ctx, z.Host.HTTPClient(), z.token, method, url, body, out)
}

// WaitOnline waits until the node reports itself online (it has heard from a root).
func (z *ZT1) WaitOnline(timeout time.Duration) error {
	return z.poll(timeout, func() error {
		st, err := z.Status(context.Background())
		if err == nil && !st.Online {
			err = errors.New("not online")
		}
		return err
	})
}

// WaitNetwork waits until network nwid is OK with an IPv4 address that is configured on the
// TAP device, and returns the endpoint for programs in the node's namespace, reached at that
// address. The node must have joined (Join or Home.PreJoin).
func (z *ZT1) WaitNetwork(t T, nwid string, timeout time.Duration) *Endpoint {
	t.Helper()
	n, err := z.WaitNetworkOK(nwid, timeout)
	if err != nil {
		t.Fatalf("zerotier-one %s in %s: %v", z.address, z.Host.Name, err)
	}
	p, _ := n.IPv4()
	return &Endpoint{Name: z.Host.Name + "/" + n.PortDeviceName, Host: z.Host, Addr: p.Addr()}
}

// WaitNetworkOK is WaitNetwork without a T: it returns the network's state once it is usable:
// status OK and an IPv4 address configured on the TAP device. (Other assigned addresses may
// come later, or never: see ZT1Settings; Host.WaitAddr waits for one.)
func (z *ZT1) WaitNetworkOK(nwid string, timeout time.Duration) (ZT1Network, error) {
	var n ZT1Network
	err := z.poll(timeout, func() (err error) {
		if n, err = z.Network(context.Background(), nwid); err != nil {
			return err
		}
		p, ok := n.IPv4()
		switch {
		case n.Status != "OK":
			return fmt.Errorf("network %s is %s", nwid, n.Status)
		case !ok:
			return fmt.Errorf("network %s is OK but has no IPv4 address yet", nwid)
		}
		return z.Host.WaitAddr(n.PortDeviceName, p.Addr(), 0)
	})
	return n, err
}

// poll is poll that gives up early, with the output, when zerotier-one has exited.
func (z *ZT1) poll(timeout time.Duration, try func() error) error {
	return poll(timeout, func() error {
		if !z.Proc.Running() {
			return stopPolling{fmt.Errorf("zerotier-one exited: %v\n%s", z.Proc.Wait(), z.Proc.Output())}
		}
		return try()
	})
}

// callJSON does one authenticated JSON call against a zerotier-one style API.
func callJSON(ctx context.Context, c *http.Client, token, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-ZT1-Auth", token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, url, err)
		}
	}
	return nil
}
