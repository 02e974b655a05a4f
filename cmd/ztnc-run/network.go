package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/supervisor"
	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// netOptions are the flags that put the program on ZeroTier networks.
type netOptions struct {
	nwids         []string
	home          string
	port          int
	bind          []string
	planet        string
	wait          time.Duration
	allowLoopback bool
}

func (o *netOptions) addFlags(f *pflag.FlagSet) {
	f.StringArrayVar(&o.nwids, "nwid", nil, "join this ZeroTier network (16 hex digits)")
	o.addNodeFlags(f)
	f.DurationVar(&o.wait, "wait", 60*time.Second, "how long to wait for every network to be OK with an address before starting the program (0: start at once)")
}

// addNodeFlags adds the flags of the node itself (all but --nwid and --wait).
func (o *netOptions) addNodeFlags(f *pflag.FlagSet) {
	f.StringVar(&o.home, "home", "", "node state directory: identity, planet, cached configs (default $ZTNC_HOME, $XDG_STATE_HOME/ztnc, ~/.local/state/ztnc)")
	f.IntVar(&o.port, "port", 0, "UDP port of the node (default 9993 if free, else the port used last, else a random one)")
	f.StringArrayVar(&o.bind, "bind", nil, "local address for the node's UDP socket (repeatable; default: all)")
	f.StringVar(&o.planet, "planet", "", "planet file naming the roots (default: HOME/planet, else ZeroTier's public roots)")
	f.BoolVar(&o.allowLoopback, "allow-loopback", false, "accept loopback physical paths (only between nodes of ours on one machine; implied by a planet whose roots are on loopback)")
}

// networkIDs parses --nwid values; each may hold several IDs separated by commas or spaces.
func (o *netOptions) networkIDs() ([]ztaddr.NetworkID, error) {
	var out []ztaddr.NetworkID
	for _, v := range o.nwids {
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			id, err := ztaddr.ParseNetworkID(s)
			if err != nil || id == 0 {
				return nil, fmt.Errorf("--nwid %q: want a network ID of 16 hex digits", s)
			}
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out, nil
}

func (o *netOptions) nodeConfig(log *slog.Logger) (zt.Config, error) {
	cfg := zt.Config{Home: o.home, Port: o.port, AllowLoopback: o.allowLoopback, Logger: log}
	if cfg.Home == "" {
		h, err := zt.DefaultHome()
		if err != nil {
			return cfg, err
		}
		cfg.Home = h
	}
	if o.port < 0 || o.port > 65535 {
		return cfg, fmt.Errorf("--port %d: want 1 to 65535", o.port)
	}
	for _, s := range o.bind {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return cfg, fmt.Errorf("--bind %q: want an IP address", s)
		}
		cfg.Bind = append(cfg.Bind, a)
	}
	if o.planet != "" {
		b, err := os.ReadFile(o.planet)
		if err != nil {
			return cfg, fmt.Errorf("--planet: %w", err)
		}
		// Checked here so that the error names the file (the node would only say "planet").
		if _, _, err := world.Parse(b); err != nil {
			return cfg, fmt.Errorf("--planet %s: %w", o.planet, err)
		}
		cfg.Planet = b
	}
	return cfg, nil
}

// attachment is one joined network and the stack on it.
type attachment struct {
	nw    *zt.Network
	stack *netstack.Stack
}

// startNode starts the node of the home (networks are joined through a netset).
func startNode(ctx context.Context, log *slog.Logger, o *netOptions) (*zt.Node, error) {
	cfg, err := o.nodeConfig(log)
	if err != nil {
		return nil, err
	}
	if planetOnLoopback(cfg) {
		cfg.AllowLoopback = true
	}
	node, err := zt.NewNode(ctx, cfg)
	if err != nil {
		return nil, err
	}
	node.Start()
	return node, nil
}

// waitNetworks returns once every network is OK with an address, at once if wait is zero; it
// fails with a one-line reason when the wait runs out.
func waitNetworks(ctx context.Context, node *zt.Node, atts []attachment, wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for _, a := range atts {
		ch := a.nw.Notify()
		for !ready(a.nw.State()) {
			select {
			case <-ch:
			case <-deadline.C:
				return notReady(node.Address(), a.nw.State(), wait)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// logCounters reports at debug level what the node and its networks carried and what they
// dropped, by reason (for instance "not-member": frames from peers without a valid
// certificate of membership).
func logCounters(log *slog.Logger, node *zt.Node, atts []attachment) {
	log.Debug("node counters", "address", node.Address().String(), "counters", fmt.Sprintf("%+v", node.Counters()))
	for _, a := range atts {
		log.Debug("network counters", "nwid", a.nw.ID().String(), "counters", fmt.Sprintf("%+v", a.nw.Counters()))
	}
}

// ready reports whether a network can carry the program's traffic.
func ready(s zt.NetworkState) bool {
	return s.Status == zt.StatusOK && len(s.Addresses) > 0
}

// notReady explains why a network did not come up in time, naming what the user can do.
func notReady(addr ztaddr.Address, s zt.NetworkState, wait time.Duration) error {
	switch s.Status {
	case zt.StatusAccessDenied:
		return fmt.Errorf("ACCESS_DENIED: authorize %s on network %s", addr, s.ID)
	case zt.StatusNotFound:
		return fmt.Errorf("NOT_FOUND: network %s does not exist on its controller %s", s.ID, s.ID.Controller())
	case zt.StatusOK:
		return fmt.Errorf("network %s is OK but assigned no address to %s after %s (does the network have an IPv4 pool with a route, or IPv6 assignment?)", s.ID, addr, wait)
	}
	return fmt.Errorf("%s: no config for network %s from its controller %s after %s (is the controller up, and the node online?)", s.Status, s.ID, s.ID.Controller(), wait)
}

// followConfig applies nw's config to its stack, and its status to the outages, now and then
// after every change in the background (the node logs the changes). The first application
// is done when followConfig returns, so that no program sees the network before its routes
// or its outage are known.
//
// A network's routes are applied before it counts as up, and it counts as down before
// anything else changes, so that no destination of its takes the host's routes in between.
func followConfig(ctx context.Context, log *slog.Logger, nw *zt.Network, st *netstack.Stack, outages *supervisor.Outages) {
	ch := nw.Notify()
	apply := func() {
		s := nw.State()
		status := routingStatus(s)
		if status != supervisor.NetworkUp {
			outages.Set(st, status)
		}
		if err := applyConfig(st, s); err != nil {
			log.Warn("network config not applied", "nwid", nw.ID().String(), "err", err)
		}
		if status == supervisor.NetworkUp {
			outages.Set(st, status)
		}
	}
	apply()
	go func() {
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					// Left: the programs lose the network as they would an interface.
					forget(st, outages)
					return
				}
				apply()
			case <-ctx.Done():
				return
			}
		}
	}()
}

// forget takes a left network's addresses and routes away: its destinations take the host's
// routes from then on, as on a host whose ZeroTier interface is gone.
func forget(st *netstack.Stack, outages *supervisor.Outages) {
	st.SetRoutes(nil)
	st.SetAddresses(nil)
	outages.Set(st, supervisor.NetworkUp)
}

// routingStatus is what routing makes of a network's state: up when OK; down when it has a
// config but is not OK (its last routes stay, unreachable); unconfigured before its first
// config (zt leaves the config's fields of the state zero until then), when nobody knows
// its routes. A node that is offline leaves its networks OK: peers it has direct paths to
// may still be reached, and what is not reached is dropped, not sent to the host.
func routingStatus(s zt.NetworkState) supervisor.NetworkStatus {
	switch {
	case s.ConfigTime.IsZero():
		return supervisor.NetworkUnconfigured
	case s.Status != zt.StatusOK:
		return supervisor.NetworkDown
	}
	return supervisor.NetworkUp
}

// applyConfig makes a stack's addresses, routes and MTU those of the network's state.
func applyConfig(st *netstack.Stack, s zt.NetworkState) error {
	var errs []error
	if s.MTU > 0 {
		errs = append(errs, st.SetMTU(s.MTU))
	}
	errs = append(errs, st.SetAddresses(s.Addresses))
	routes := make([]netstack.Route, 0, len(s.Routes))
	for _, r := range s.Routes {
		routes = append(routes, netstack.Route{Dst: r.Target, Via: r.Via})
	}
	errs = append(errs, st.SetRoutes(routes))
	return errors.Join(errs...)
}

// planetOnLoopback reports whether the planet the node will use names roots on loopback, in
// which case the roots are nodes of ours on this machine and loopback paths must be allowed.
func planetOnLoopback(cfg zt.Config) bool {
	b := cfg.Planet
	if b == nil {
		b, _ = os.ReadFile(filepath.Join(cfg.Home, "planet"))
	}
	if b == nil {
		return false
	}
	w, _, err := world.Parse(b)
	if err != nil {
		return false
	}
	for _, r := range w.Roots {
		for _, ep := range r.StableEndpoints {
			if ep.AddrPort.Addr().IsLoopback() {
				return true
			}
		}
	}
	return false
}
