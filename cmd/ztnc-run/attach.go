package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/notify"
	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// attachOptions are the flags of ztnc-run attach.
type attachOptions struct {
	home     string
	wait     time.Duration
	networks []ztaddr.NetworkID // must be joined by the instance (ZT_NC_NWID in plain run)
}

func newAttachCmd() *cobra.Command {
	var o attachOptions
	cmd := &cobra.Command{
		Use:   "attach [--home DIR] -- CMD [ARGS...]",
		Short: "Run a program on the networks of a running ztnc-run service (or instance)",
		Long: `attach runs CMD, and every process it starts, on the networks of the ztnc-run that runs
with home DIR — a "ztnc-run service", or a "ztnc-run --nwid" running its own program. CMD shares
that instance's node, addresses and listeners: it reaches the programs attached before it
through the virtual network and through 127.0.0.1, and they reach it.

attach is CMD's parent: CMD's terminal, working directory, environment and limits are attach's;
signals sent to attach are passed on to CMD; attach's exit status is CMD's (125 if ztnc-run
failed, 126/127 if CMD cannot be run). When the instance stops, CMD gets SIGTERM (SIGKILL 2 s
later) and attach exits with CMD's status; if the instance dies, CMD is killed and attach exits
125: CMD's sockets lived in the instance, so it could not go on.

Only the owner of the home (and root) can attach: the control socket HOME/ztnc.sock has mode
0600 and the instance checks the peer's uid.`,
		Example: `  ztnc-run service --home /var/lib/ztnc &
  ztnc-run join --home /var/lib/ztnc 8056c2e21c000001
  ztnc-run attach --home /var/lib/ztnc -- python3 -m http.server 8080 &
  ztnc-run attach --home /var/lib/ztnc -- curl http://127.0.0.1:8080/`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("no program given: ztnc-run attach [--home DIR] -- CMD [ARGS...]")
			}
			return nil
		},
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			return attachProgram(log, &o, args)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&o.home, "home", "", "home of the running ztnc-run (default $ZTNC_HOME, $XDG_STATE_HOME/ztnc, ~/.local/state/ztnc)")
	cmd.Flags().DurationVar(&o.wait, "wait", 60*time.Second, "how long to wait for the instance's networks to be OK with an address (0: start at once)")
	return cmd
}

// attachProgram runs CMD under the instance of o.home and returns its exit status.
func attachProgram(log *slog.Logger, o *attachOptions, args []string) error {
	home, err := homeOrDefault(o.home)
	if err != nil {
		return err
	}
	path, err := lookPath(args[0])
	if err != nil {
		return err
	}
	conn, err := dialControl(home)
	if err != nil {
		return err
	}
	return attachOver(log, conn, home, o, path, args)
}

// homeOrDefault is the home given, or the default one.
func homeOrDefault(home string) (string, error) {
	if home != "" {
		return home, nil
	}
	return zt.DefaultHome()
}

// dialControl connects to the control socket of home (*errNoInstance when nothing serves it).
func dialControl(home string) (*net.UnixConn, error) {
	path, closeDir, err := socketPath(home, controlSocketFile)
	if err != nil {
		return nil, err
	}
	defer closeDir()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return nil, &errNoInstance{home, err}
	}
	return conn, nil
}

// attachOver runs the attach protocol (see attachserve.go) on conn, a connection to the
// control socket of home: it starts the program under the instance's filter and hands the
// listener over.
func attachOver(log *slog.Logger, conn *net.UnixConn, home string, o *attachOptions, path string, args []string) error {
	fail := func(err error) error {
		conn.Close()
		return &exitError{exitFailure, err.Error()}
	}
	req := attachRequest{Argv: args, Wait: o.wait.String()}
	for _, id := range o.networks {
		req.Networks = append(req.Networks, id.String())
	}
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequest("POST", "http://"+controlHost+"/attach", bytes.NewReader(body))
	if err != nil {
		return fail(err)
	}
	hreq.Header.Set("Connection", "Upgrade")
	hreq.Header.Set("Upgrade", attachProtocol)
	hreq.Header.Set("Content-Type", "application/json")
	// The instance answers once its networks are up (at most o.wait).
	conn.SetDeadline(time.Now().Add(o.wait + 30*time.Second))
	// A refusal may come before the request is written: read the answer whatever the write did.
	werr := hreq.Write(conn)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, hreq)
	if err != nil {
		if werr != nil {
			err = werr
		}
		return fail(fmt.Errorf("attach to the ztnc-run of %s: %w", home, err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error      string
			Supervised bool
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		if resp.StatusCode == http.StatusConflict && e.Supervised {
			// This process runs under that instance already: so will CMD.
			conn.Close()
			log.Debug("already supervised by the instance: running the program directly", "home", home)
			takeIdentitySecret()
			err := syscall.Exec(path, args, os.Environ())
			return &exitError{exitCannotExec, fmt.Sprintf("%s: %v", path, err)}
		}
		return fail(fmt.Errorf("attach to the ztnc-run of %s: %s", home, e.Error))
	}
	dec := json.NewDecoder(br)
	var hello attachHello
	if err := dec.Decode(&hello); err != nil {
		return fail(fmt.Errorf("attach: %w", err))
	}
	prog, err := decodeFilter(hello.Filter)
	if err != nil {
		return fail(fmt.Errorf("attach: filter: %w", err))
	}
	conn.SetDeadline(time.Now().Add(handoverTimeout))
	// The program asks its own instance (ztnc-run status) through ZTNC_HOME, and never
	// inherits an identity's key.
	os.Setenv("ZTNC_HOME", hello.Home)
	takeIdentitySecret()
	return launch(prog, path, args, func(p *notify.Process) (<-chan error, func(int), error) {
		return handOver(log, conn, dec, home, args[0], p)
	})
}

// handOver gives the program's listener to the instance, then follows the instance's
// events: a stop request ends the program (SIGTERM, SIGKILL after stopGrace), an error or a
// lost instance fails it.
func handOver(log *slog.Logger, conn *net.UnixConn, dec *json.Decoder, home, name string, p *notify.Process) (<-chan error, func(int), error) {
	pidfd, err := unix.PidfdOpen(p.Pid, 0)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("pidfd_open: %w", err)
	}
	msg, _ := json.Marshal(attachHandover{Killable: p.Listener.Killable})
	_, _, err = conn.WriteMsgUnix(append(msg, '\n'), unix.UnixRights(int(p.Listener.File().Fd()), pidfd), nil)
	unix.Close(pidfd)
	// The instance holds the listener now; without this copy, its end is the filter's end.
	p.Listener.Close()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("attach: hand-over: %w", err)
	}
	var ev attachEvent
	if err := dec.Decode(&ev); err != nil || !ev.OK {
		conn.Close()
		if err == nil && ev.Gone {
			// The program ended before the instance took it: launch reports its status.
			return nil, func(int) {}, nil
		}
		if err == nil {
			err = errors.New(ev.Error)
		}
		return nil, nil, fmt.Errorf("attach: %w", err)
	}
	conn.SetDeadline(time.Time{})

	failed := make(chan error, 1)
	var mu sync.Mutex
	var kill *time.Timer
	go func() {
		stopping := false
		for {
			var ev attachEvent
			if err := dec.Decode(&ev); err != nil {
				if stopping {
					// The instance is gone after asking for the stop: what is left cannot
					// run without it.
					killTree(syscall.SIGKILL)
				} else {
					failed <- fmt.Errorf("the ztnc-run of %s went away; %s ended with it (its sockets lived there)", home, name)
				}
				return
			}
			switch {
			case ev.Stop != "" && !stopping:
				stopping = true
				log.Warn("the instance is stopping: ending the program", "home", home, "reason", ev.Stop)
				syscall.Kill(signalTarget(p.Pid), syscall.SIGTERM)
				mu.Lock()
				kill = time.AfterFunc(stopGrace, func() { killTree(syscall.SIGKILL) })
				mu.Unlock()
			case ev.Error != "":
				failed <- errors.New(ev.Error)
				return
			}
		}
	}()
	return failed, func(status int) {
		mu.Lock()
		if kill != nil {
			kill.Stop()
		}
		mu.Unlock()
		writeLine(conn, attachEvent{Exit: &status})
		conn.Close()
	}, nil
}

// attachFromEnv is "ztnc-run -- CMD" with the network named only by the environment
// (ZTNC_NWID or ZT_NC_NWID, or just ZTNC_HOME): when a ztnc-run runs with that home, CMD
// attaches to it, as programs started with the 2015 beta's variables joined its service.
// It reports false, and does nothing, when none runs there.
func attachFromEnv(cmd *cobra.Command, o *runOptions, args []string) (bool, error) {
	fs := cmd.Flags()
	nwid, home := fs.Lookup("nwid"), fs.Lookup("home")
	if setOnCommandLine(nwid) || setOnCommandLine(fs.Lookup("local")) ||
		!(setFromEnvironment(nwid) || setFromEnvironment(home)) {
		return false, nil
	}
	h, err := homeOrDefault(o.net.home)
	if err != nil {
		return false, nil
	}
	conn, err := dialControl(h)
	if err != nil {
		return false, nil // nothing runs there: ztnc-run runs its own node, as without a service
	}
	// What the instance already decides cannot be chosen here.
	var mine []string
	fs.Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "home", "nwid", "wait", "verbose", "log-format", "cpuprofile":
		default:
			if setOnCommandLine(f) {
				mine = append(mine, "--"+f.Name)
			}
		}
	})
	if len(mine) > 0 {
		conn.Close()
		return true, fmt.Errorf("%s: the program attaches to the ztnc-run running with home %s (named by the environment), whose node and networks have their own settings; give these to that ztnc-run, or use ztnc-run with --nwid and a home of its own", strings.Join(mine, ", "), h)
	}
	ids, err := o.net.networkIDs()
	if err != nil {
		conn.Close()
		return true, err
	}
	log, err := newLogger(o)
	if err != nil {
		conn.Close()
		return true, err
	}
	path, err := lookPath(args[0])
	if err != nil {
		conn.Close()
		return true, err
	}
	log.Debug("attaching to the running ztnc-run of the environment's home", "home", h)
	return true, attachOver(log, conn, h, &attachOptions{home: h, wait: o.net.wait, networks: ids}, path, args)
}
