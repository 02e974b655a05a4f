package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

type rootOptions struct {
	home          string
	bind          string
	port          int
	endpoints     []string
	allowLoopback bool
}

func newRootServerCmd() *cobra.Command {
	var o rootOptions
	cmd := &cobra.Command{
		Use:   "root [flags]",
		Short: "Run a ZeroTier root server for self-hosted and offline networks",
		Long: `root runs a ZeroTier root: it answers HELLO and WHOIS, relays traffic between nodes
that cannot reach each other directly, introduces them to each other (RENDEZVOUS) and answers
multicast gathers, so that ARP and NDP work on the networks.

On first start it creates HOME/planet, a planet naming this root at its endpoints (--endpoint,
else --bind and --port), signed with a world key kept in HOME/world.secret. Copy that file into
the home of every node that is to use this root: ztnc-run reads HOME/planet (or --planet), and
zerotier-one reads the planet file in its home directory. If the endpoints change, the planet
is re-signed with the same key.`,
		Example: `  ztnc-run root --home /var/lib/ztnc-root --bind 192.0.2.1 --port 9993
  ztnc-run root --home ./root --bind 127.0.0.1 --port 19993   # our nodes only, one machine`,
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			verbose, _ := cmd.Flags().GetBool("verbose")
			format, _ := cmd.Flags().GetString("log-format")
			log, err := newLogger(&runOptions{verbose: verbose, logFormat: format})
			if err != nil {
				return err
			}
			cfg, err := o.config()
			if err != nil {
				return err
			}
			cfg.Logger = log
			host, err := claimNodeHome(log, cfg.Home)
			if err != nil {
				return err
			}
			defer host.close()
			n, err := zt.NewNode(cmd.Context(), cfg)
			if err != nil {
				return &exitError{code: exitFailure, msg: err.Error()}
			}
			defer n.Close()
			if err := host.serveNetworks(n, nil); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			n.Start()
			log.Info("root serving", "address", n.Address().String(), "endpoints", fmt.Sprint(cfg.RootEndpoints),
				"planet", filepath.Join(cfg.Home, "planet"))
			<-ctx.Done()
			log.Info("root stopping", "counters", fmt.Sprintf("%+v", n.Counters()))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.home, "home", "", "state directory: identity, world key, planet (default $ZTNC_HOME, $XDG_STATE_HOME/ztnc, ~/.local/state/ztnc)")
	f.StringVar(&o.bind, "bind", "", "local address to listen on (default: all)")
	f.IntVar(&o.port, "port", zt.DefaultPort, "UDP port")
	f.StringArrayVar(&o.endpoints, "endpoint", nil, "ADDR:PORT the planet names for this root (repeatable; default: --bind and --port)")
	f.BoolVar(&o.allowLoopback, "allow-loopback", false, "accept loopback paths (only for nodes of ours on this machine; implied by a loopback endpoint)")
	return cmd
}

func (o *rootOptions) config() (zt.Config, error) {
	cfg := zt.Config{Home: o.home, Port: o.port, AllowLoopback: o.allowLoopback}
	if cfg.Home == "" {
		h, err := zt.DefaultHome()
		if err != nil {
			return cfg, err
		}
		cfg.Home = h
	}
	if o.port <= 0 || o.port > 65535 {
		return cfg, fmt.Errorf("--port %d: want 1 to 65535", o.port)
	}
	var bind netip.Addr
	if o.bind != "" {
		var err error
		if bind, err = netip.ParseAddr(o.bind); err != nil {
			return cfg, fmt.Errorf("--bind %q: want an IP address", o.bind)
		}
		cfg.Bind = []netip.Addr{bind}
	}
	for _, s := range o.endpoints {
		ep, err := netip.ParseAddrPort(s)
		if err != nil {
			return cfg, fmt.Errorf("--endpoint %q: want ADDR:PORT ([ADDR]:PORT for IPv6)", s)
		}
		cfg.RootEndpoints = append(cfg.RootEndpoints, ep)
	}
	if len(cfg.RootEndpoints) == 0 {
		addrs := []netip.Addr{bind}
		if !bind.IsValid() || bind.IsUnspecified() {
			addrs = interfaceAddresses()
		}
		for _, a := range addrs {
			cfg.RootEndpoints = append(cfg.RootEndpoints, netip.AddrPortFrom(a, uint16(o.port)))
		}
		if len(cfg.RootEndpoints) == 0 {
			return cfg, fmt.Errorf("no address to name in the planet: give --bind or --endpoint")
		}
	}
	for _, ep := range cfg.RootEndpoints {
		if ep.Addr().IsLoopback() {
			cfg.AllowLoopback = true
		}
	}
	return cfg, nil
}

// interfaceAddresses lists this machine's addresses that ZeroTier can use as paths
// (private or global; not loopback or link-local), at most what a planet can hold.
func interfaceAddresses() []netip.Addr {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ia := range ifaddrs {
		p, ok := ia.(*net.IPNet)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(p.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		switch ztaddr.IPScope(a) {
		case ztaddr.ScopePrivate, ztaddr.ScopePseudoPrivate, ztaddr.ScopeShared, ztaddr.ScopeGlobal:
			if len(out) < 32 {
				out = append(out, a)
			}
		}
	}
	return out
}
