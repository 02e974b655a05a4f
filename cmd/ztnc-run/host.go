package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/notify"
	"github.com/ztnc/ztnc/supervisor"
	"github.com/ztnc/ztnc/zt"
)

// hostOptions are the run command's flags for how the program meets the host: published
// ports, the health endpoint, and the policy for destinations outside the virtual networks.
type hostOptions struct {
	publish   []string
	health    string
	isolate   bool
	allowHost []string
}

func (o *hostOptions) addFlags(f *pflag.FlagSet) {
	f.StringArrayVarP(&o.publish, "publish", "p", nil, "publish a port of the program on the host: [HOSTADDR:]HOSTPORT:VPORT[/tcp|/udp] (repeatable)")
	f.StringVar(&o.health, "health", "", "serve /healthz and /metrics over HTTP on this host address (ADDR:PORT)")
	f.BoolVar(&o.isolate, "isolate", false, "let nothing reach the host's network, its loopback included (default: what is not on a virtual network uses the host's)")
	f.StringArrayVar(&o.allowHost, "allow-host", nil, "with --isolate, let the program reach CIDR[:PORT] on the host's network (repeatable)")
}

// hostRule is one --allow-host hole: a prefix and a port (0: every port).
type hostRule struct {
	prefix netip.Prefix
	port   uint16
}

// parseAllowHost parses CIDR[:PORT]; an address without a length is a single host, and an
// IPv6 prefix with a port goes in brackets ([2001:db8::/32]:443).
func parseAllowHost(v string) (hostRule, error) {
	var r hostRule
	bad := fmt.Errorf("--allow-host %q: want CIDR[:PORT], like 192.0.2.0/24, 192.0.2.7:5432 or [2001:db8::/32]:443", v)
	s, port := strings.TrimSpace(v), ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return r, bad
		}
		rest := s[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return r, bad
			}
			port = rest[1:]
		}
		s = s[1:end]
	} else if strings.Count(s, ":") == 1 {
		s, port, _ = strings.Cut(s, ":")
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return r, bad
		}
		r.port = uint16(n)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return r, bad
		}
		r.prefix = p.Masked()
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return r, bad
		}
		r.prefix = netip.PrefixFrom(a, a.BitLen())
	}
	return r, nil
}

// policy parses --isolate and --allow-host into the supervisor's policy for destinations
// outside the virtual networks.
func (o *hostOptions) policy() (supervisor.Policy, error) {
	p := supervisor.Policy{Isolate: o.isolate}
	for _, v := range o.allowHost {
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			r, err := parseAllowHost(s)
			if err != nil {
				return p, err
			}
			p.Allow = append(p.Allow, supervisor.HostRule{Prefix: r.prefix, Port: r.port})
		}
	}
	if len(p.Allow) > 0 && !o.isolate {
		return p, errors.New("--allow-host makes holes in --isolate: give --isolate too")
	}
	return p, nil
}

// hostSetup is what runs around the program besides its networks: the instance's view for
// status, the home lock and control socket, the health server and the published ports.
type hostSetup struct {
	log    *slog.Logger
	inst   *instance
	lock   *homeLock
	ctl    *controlServer
	health *healthServer
	pubs   []*publisher
	secret string // ZTNC_IDENTITY_SECRET
}

// startHost checks the host flags, then starts the health server and the published ports
// (their host sockets are taken now, so that a port in use fails the start; they forward
// once the program listens).
func startHost(log *slog.Logger, o *hostOptions) (*hostSetup, error) {
	if _, err := o.policy(); err != nil {
		return nil, err
	}
	var specs []publishSpec
	for _, v := range o.publish {
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			p, err := parsePublish(s)
			if err != nil {
				return nil, err
			}
			specs = append(specs, p)
		}
	}
	h := &hostSetup{log: log, inst: newInstance(""), secret: takeIdentitySecret()}
	if o.health != "" {
		hs, err := serveHealth(log, o.health, h.inst)
		if err != nil {
			return nil, err
		}
		h.health = hs
	}
	for _, spec := range specs {
		p, err := startPublisher(log, spec, h.firstStack, udpIdleTimeout)
		if err != nil {
			h.close()
			return nil, err
		}
		h.pubs = append(h.pubs, p)
		h.inst.addPublisher(p)
	}
	return h, nil
}

// firstStack is the stack published ports forward to: the first network's.
func (h *hostSetup) firstStack() *netstack.Stack {
	_, nets, _, _ := h.inst.snapshot()
	if len(nets) == 0 {
		return nil
	}
	return nets[0].stack
}

// claimHome locks the node's home for this process and installs ZTNC_IDENTITY_SECRET's
// identity there, before the node starts.
func (h *hostSetup) claimHome(ctx context.Context, o *netOptions) error {
	cfg, err := o.nodeConfig(h.log)
	if err != nil {
		return err
	}
	lock, err := lockHome(cfg.Home)
	if err != nil {
		return err
	}
	h.lock = lock
	h.inst.home = cfg.Home
	// The programs find their ztnc-run (`ztnc-run status` from inside) through ZTNC_HOME.
	os.Setenv("ZTNC_HOME", cfg.Home)
	addr, err := installIdentity(ctx, cfg.Home, h.secret)
	if err != nil {
		return err
	}
	if addr != "" {
		h.log.Debug("identity from "+identitySecretEnv, "address", addr)
	}
	return nil
}

// claimNodeHome locks home for a command that runs a node without programs (root,
// controller); serveNetworks then serves its control socket.
func claimNodeHome(log *slog.Logger, home string) (*hostSetup, error) {
	lock, err := lockHome(home)
	if err != nil {
		return nil, err
	}
	return &hostSetup{log: log, inst: newInstance(home), lock: lock}, nil
}

// serveNetworks makes the node and its networks visible on the control socket and /healthz.
func (h *hostSetup) serveNetworks(node *zt.Node, atts []attachment) error {
	h.inst.setNetworks(node, atts)
	if node == nil || h.lock == nil {
		return nil
	}
	ctl, err := serveControl(h.log, h.lock, h.inst.handler())
	if err != nil {
		return err
	}
	h.ctl = ctl
	return nil
}

// serveNetset makes the node and its networks visible on the control socket and /healthz,
// with join and leave, and takes programs started by ztnc-run attach under filter.
func (h *hostSetup) serveNetset(node *zt.Node, ns *netset, filter notify.Program) (*attacher, error) {
	at := newAttacher(h.log, h.inst, ns, filter)
	h.inst.mu.Lock()
	h.inst.netset, h.inst.attach = ns, at
	h.inst.mu.Unlock()
	ns.watch(func(atts []attachment) { h.inst.setNetworks(node, atts) })
	return at, h.serveNetworks(node, ns.joined())
}

// close stops everything, the published ports first (their connections end) and the home
// last.
func (h *hostSetup) close() {
	for _, p := range h.pubs {
		p.close()
	}
	if h.health != nil {
		h.health.close()
	}
	if h.ctl != nil {
		h.ctl.close()
	}
	if h.lock != nil {
		h.lock.release()
	}
}
