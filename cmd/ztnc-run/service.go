package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ztnc/ztnc/notify"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// serviceOptions are the flags of ztnc-run service: those of a run with a node, without a
// program (and without --wait: nothing waits for the networks).
type serviceOptions struct {
	net      netOptions
	host     hostOptions
	addHosts []string
}

// newServiceCmd returns "service": the node, its networks and the supervision of programs
// that ztnc-run attach starts later, as the 2015 beta's zerotier-netcon-service.
func newServiceCmd() *cobra.Command {
	var o serviceOptions
	cmd := &cobra.Command{
		Use:   "service [--home DIR] [--nwid NWID ...]",
		Short: "Run a node and its networks for programs started later with ztnc-run attach",
		Long: `service runs the ZeroTier node of its home, with a network stack for each joined network,
until SIGTERM, SIGINT or SIGHUP; it runs no program of its own. Programs started later with
"ztnc-run attach --home DIR -- CMD" (or "ztnc-run -- CMD" with ZTNC_HOME or ZT_NC_NWID set)
run on its networks and share its addresses and listeners.

Networks are joined with --nwid, with "ztnc-run join NWID" while it runs, and, as zerotier-one
does, from the home: a network joined before stays joined until left (HOME/networks.d/NWID.conf;
an empty file joins at start). "ztnc-run leave NWID" leaves one: the programs lose it.

It stays in the foreground and logs on stderr; its pid is in HOME/ztnc.pid. On SIGTERM the
attached programs get SIGTERM (SIGKILL 2 s later), then the node saves its state and the
service exits 0. One home runs one ztnc-run at a time.`,
		Example: `  ztnc-run service --home /var/lib/ztnc &
  ztnc-run join --home /var/lib/ztnc 8056c2e21c000001
  ztnc-run listnetworks --home /var/lib/ztnc
  ztnc-run attach --home /var/lib/ztnc -- python3 -m http.server 8080`,
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runService(cmd, &o)
		},
	}
	f := cmd.Flags()
	o.net.addNodeFlags(f)
	f.StringArrayVar(&o.net.nwids, "nwid", nil, "join this ZeroTier network at start (16 hex digits; repeatable)")
	f.StringArrayVar(&o.addHosts, "add-host", nil, "add NAME=ADDRESS to the virtual networks' names (NAME."+localDomain+" unless NAME has a dot; repeatable)")
	o.host.addFlags(f)
	return cmd
}

func runService(cmd *cobra.Command, o *serviceOptions) error {
	log, err := commandLogger(cmd)
	if err != nil {
		return err
	}
	ids, err := o.net.networkIDs()
	if err != nil {
		return err
	}
	pol, err := o.host.policy()
	if err != nil {
		return err
	}
	filter, err := notify.Compile(pol.Spec())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	host, err := startHost(log, &o.host)
	if err != nil {
		return err
	}
	defer host.close()
	if err := host.claimHome(ctx, &o.net); err != nil {
		return err
	}
	node, err := startNode(ctx, log, &o.net)
	if err != nil {
		return err
	}
	defer node.Close()
	ns, err := newNetset(context.Background(), log, node, pol, o.addHosts)
	if err != nil {
		return err
	}
	defer ns.close()
	for _, id := range joinedBefore(host.inst.home, ids) {
		if _, err := ns.join(id); err != nil {
			return err
		}
	}
	at, err := host.serveNetset(node, ns, filter)
	if err != nil {
		return err
	}
	if isInit {
		// As a container's entrypoint, every orphan of the container (those of docker exec
		// sessions) becomes the service's child.
		go reapOrphans(ctx)
	}
	log.Info("service ready", "address", node.Address().String(), "home", host.inst.home, "pid", os.Getpid())
	<-ctx.Done()
	log.Info("service stopping")
	at.stop("the service is stopping", attachStopGrace)
	return nil
}

// joinedBefore lists the networks of the home's networks.d (joined and not left, as
// zerotier-one keeps them), then the others of ids.
func joinedBefore(home string, ids []ztaddr.NetworkID) []ztaddr.NetworkID {
	var out []ztaddr.NetworkID
	ents, _ := os.ReadDir(filepath.Join(home, "networks.d"))
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".conf")
		if !ok || len(name) != 16 || e.IsDir() {
			continue
		}
		if id, err := ztaddr.ParseNetworkID(name); err == nil && id != 0 {
			out = append(out, id)
		}
	}
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// reapOrphans reaps the children that come to the service until ctx ends.
func reapOrphans(ctx context.Context) {
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	for {
		reapNoHang()
		select {
		case <-chld:
		case <-ctx.Done():
			return
		}
	}
}
