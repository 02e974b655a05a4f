package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/controller"
)

// controllerOptions are the node flags of "ztnc-run --nwid" (without --nwid and --wait).
type controllerOptions struct {
	netOptions
}

// newControllerCmd returns "controller": a node with a network controller attached, and the
// controller's HTTP API on 127.0.0.1 at the node's port number.
func newControllerCmd() *cobra.Command {
	var o controllerOptions
	cmd := &cobra.Command{
		Use:   "controller [--home DIR] [--bind ADDR] [--port N] [--planet FILE]",
		Short: "Run a ZeroTier network controller (zerotier-one's /controller API)",
		Long: `controller runs a ZeroTier node that configures the networks whose IDs start with its
address. Networks and members live as JSON files in DIR/controller.d, in zerotier-one's layout.

They are managed through zerotier-one's controller API, served on 127.0.0.1 at the node's port
number (TCP) to clients that send the token of DIR/authtoken.secret in an X-ZT1-Auth header;
scripts written against zerotier-one's controller API work unchanged (docs/cli.md lists the
requests it serves).`,
		Example: `  ztnc-run controller --home /var/lib/ztnc-ctl --planet ./planet
  TOK=$(cat /var/lib/ztnc-ctl/authtoken.secret)
  curl -H "X-ZT1-Auth: $TOK" -X POST http://127.0.0.1:9993/controller/network/<address>______ \
    -d '{"name":"net","v4AssignMode":{"zt":true},"routes":[{"target":"10.147.17.0/24"}],
         "ipAssignmentPools":[{"ipRangeStart":"10.147.17.1","ipRangeEnd":"10.147.17.254"}]}'
  curl -H "X-ZT1-Auth: $TOK" -X POST -d '{"authorized":true}' \
    http://127.0.0.1:9993/controller/network/<nwid>/member/<member address>`,
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			verbose, _ := cmd.Flags().GetBool("verbose")
			format, _ := cmd.Flags().GetString("log-format")
			if format == "" {
				format = "text"
			}
			log, err := newLogger(&runOptions{verbose: verbose, logFormat: format})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runController(ctx, &o, log, cmd.ErrOrStderr(), nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.home, "home", "", "state directory: identity, planet, controller.d, authtoken.secret (default $ZTNC_HOME, $XDG_STATE_HOME/ztnc, ~/.local/state/ztnc)")
	f.StringArrayVar(&o.bind, "bind", nil, "local address for the node's UDP socket (repeatable; default: all)")
	f.IntVar(&o.port, "port", 0, "UDP port, also the API's TCP port (default 9993 if free, else the port used last, else a random one)")
	f.StringVar(&o.planet, "planet", "", "planet file naming the roots (default: HOME/planet, else ZeroTier's public roots)")
	f.BoolVar(&o.allowLoopback, "allow-loopback", false, "accept loopback physical paths (only between nodes of ours on one machine; implied by a planet whose roots are on loopback)")
	return cmd
}

// runController runs until ctx ends. ready, if not nil, is called with the API's base URL once
// it is served.
func runController(ctx context.Context, o *controllerOptions, log *slog.Logger, out io.Writer, ready func(url string)) error {
	cfg, err := o.nodeConfig(log)
	if err != nil {
		return err
	}
	if planetOnLoopback(cfg) {
		cfg.AllowLoopback = true
	}
	home := cfg.Home
	host, err := claimNodeHome(log, home)
	if err != nil {
		return err
	}
	defer host.close()
	node, err := zt.NewNode(ctx, cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	if err := host.serveNetworks(node, nil); err != nil {
		return err
	}
	ctl, err := controller.New(controller.Config{Home: home, Identity: node.Identity(), Sender: node, Logger: log})
	if err != nil {
		return err
	}
	defer ctl.Close()
	node.SetConfigMaster(ctl)
	token, err := controller.AuthToken(home)
	if err != nil {
		return fmt.Errorf("API token: %w", err)
	}
	api := net.JoinHostPort("127.0.0.1", strconv.Itoa(node.Port()))
	ln, err := net.Listen("tcp", api)
	if err != nil {
		return fmt.Errorf("API: %w", err)
	}
	srv := &http.Server{
		Handler:           ctl.Handler(token),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	node.Start()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + api
	fmt.Fprintf(out, "ztnc-run controller: address %s, networks %s______, UDP port %d\n", node.Address(), node.Address(), node.Port())
	fmt.Fprintf(out, "ztnc-run controller: API %s/controller (X-ZT1-Auth: token in %s)\n", url, filepath.Join(home, controller.AuthTokenFile))
	if ready != nil {
		ready(url)
	}
	select {
	case <-ctx.Done():
	case err = <-served:
		return fmt.Errorf("API: %w", err)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("API: %w", err)
	}
	return nil
}
