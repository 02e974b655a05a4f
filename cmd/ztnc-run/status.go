package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Exit statuses of the control commands, as zerotier-cli's.
const (
	exitCLIError   = 1 // no instance, or the instance refused
	exitCLIBadArgs = 2 // invalid network id, wrong arguments
)

// statusOptions are the flags of the control commands.
type statusOptions struct {
	home string
	json bool
}

// client returns the control client of the chosen home.
func (o *statusOptions) client() (*controlClient, error) {
	home := o.home
	if home == "" {
		h, err := zt.DefaultHome()
		if err != nil {
			return nil, err
		}
		home = h
	}
	return newControlClient(home), nil
}

// newStatusCmds returns the commands that talk to a running ztnc-run through the control
// socket in its home, with zerotier-cli's names, output and exit status.
func newStatusCmds() []*cobra.Command {
	type cmdSpec struct {
		use, short string
		args       cobra.PositionalArgs
		run        func(o *statusOptions, c *controlClient, out io.Writer, args []string) error
	}
	specs := []cmdSpec{
		{"status", "Show the node of a running ztnc-run: 200 info <address> <version> ONLINE|OFFLINE", cobra.NoArgs, cliStatus},
		{"listnetworks", "List the networks of a running ztnc-run", cobra.NoArgs, cliListNetworks},
		{"listpeers", "List the peers of a running ztnc-run's node", cobra.NoArgs, cliListPeers},
		{"join NWID", "Join a network: programs attached from then on have it", cobra.ExactArgs(1), cliJoin},
		{"leave NWID", "Leave a network: the programs of that ztnc-run lose it", cobra.ExactArgs(1), cliLeave},
	}
	var cmds []*cobra.Command
	for _, s := range specs {
		var o statusOptions
		cmd := &cobra.Command{
			Use:   s.use,
			Short: s.short,
			Long: s.short + `.

It talks to the ztnc-run whose home is --home (default $ZTNC_HOME, $XDG_STATE_HOME/ztnc,
~/.local/state/ztnc) through the control socket HOME/ztnc.sock. Output and exit status are
zerotier-cli's: lines starting with "200", or the API's JSON with -j; exit 1 when no ztnc-run
runs on that home or it refused the request, 2 for a malformed network ID or wrong arguments.`,
			Args:          cliArgs(s.args),
			SilenceErrors: true,
			SilenceUsage:  true,
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := o.client()
				if err != nil {
					return &exitError{exitCLIError, err.Error()}
				}
				err = s.run(&o, c, cmd.OutOrStdout(), args)
				var ae *apiError
				var ee *exitError
				switch {
				case err == nil, errors.As(err, &ee):
					return err
				case errors.As(err, &ae):
					return &exitError{exitCLIError, fmt.Sprintf("%d %s %s", ae.status, cmd.Name(), ae.msg)}
				}
				return &exitError{exitCLIError, err.Error()}
			},
		}
		if s.use == "status" {
			cmd.Aliases = []string{"info"}
		}
		cmd.Flags().StringVar(&o.home, "home", "", "home of the ztnc-run to ask (default $ZTNC_HOME, $XDG_STATE_HOME/ztnc, ~/.local/state/ztnc)")
		cmd.Flags().BoolVarP(&o.json, "json", "j", false, "print the API's JSON")
		cmds = append(cmds, cmd)
	}
	return cmds
}

// printJSON prints an answer as the API gave it.
func printJSON(out io.Writer, raw json.RawMessage) error {
	_, err := fmt.Fprintf(out, "%s\n", strings.TrimSpace(string(raw)))
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cliStatus(o *statusOptions, c *controlClient, out io.Writer, _ []string) error {
	var raw json.RawMessage
	if err := c.do("GET", "/status", &raw); err != nil {
		return err
	}
	if o.json {
		return printJSON(out, raw)
	}
	var s statusJSON
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	state := "OFFLINE"
	if s.Online {
		state = "ONLINE"
	}
	_, err := fmt.Fprintf(out, "200 info %s %s %s\n", orDash(s.Address), orDash(s.Version), state)
	return err
}

func cliListNetworks(o *statusOptions, c *controlClient, out io.Writer, _ []string) error {
	var raw json.RawMessage
	if err := c.do("GET", "/network", &raw); err != nil {
		return err
	}
	if o.json {
		return printJSON(out, raw)
	}
	var nets []networkJSON
	if err := json.Unmarshal(raw, &nets); err != nil {
		return err
	}
	fmt.Fprintln(out, "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>")
	for _, n := range nets {
		ips := strings.Join(n.AssignedAddresses, ",")
		fmt.Fprintf(out, "200 listnetworks %s %s %s %s %s %s %s\n", orDash(n.NWID), orDash(n.Name), orDash(n.MAC),
			orDash(n.Status), orDash(n.Type), orDash(n.PortDeviceName), orDash(ips))
	}
	return nil
}

func cliListPeers(o *statusOptions, c *controlClient, out io.Writer, _ []string) error {
	var raw json.RawMessage
	if err := c.do("GET", "/peer", &raw); err != nil {
		return err
	}
	if o.json {
		return printJSON(out, raw)
	}
	var peers []peerJSON
	if err := json.Unmarshal(raw, &peers); err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	ago := func(t int64) int64 {
		if t == 0 {
			return -1
		}
		return now - t
	}
	fmt.Fprintln(out, "200 listpeers <ztaddr> <path> <latency> <version> <role>")
	for _, p := range peers {
		path := "-"
		for _, pa := range p.Paths {
			if pa.Preferred {
				path = fmt.Sprintf("%s;%d;%d", pa.Address, ago(pa.LastSend), ago(pa.LastReceive))
				break
			}
		}
		version := "-"
		if p.VersionMajor >= 0 {
			version = fmt.Sprintf("%d.%d.%d", p.VersionMajor, p.VersionMinor, p.VersionRev)
		}
		fmt.Fprintf(out, "200 listpeers %s %s %d %s %s\n", p.Address, path, p.Latency, version, orDash(p.Role))
	}
	return nil
}

// cliArgs makes wrong arguments exit 2, as zerotier-cli's usage errors do.
func cliArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &exitError{exitCLIBadArgs, fmt.Sprintf("%s: %v (see ztnc-run %s --help)", cmd.Name(), err, cmd.Name())}
		}
		return nil
	}
}

// networkArg checks a command's network ID argument as zerotier-cli does.
func networkArg(s string) (ztaddr.NetworkID, error) {
	id, err := ztaddr.ParseNetworkID(s)
	if err != nil || len(s) != 16 || id == 0 {
		return 0, &exitError{exitCLIBadArgs, "invalid network id"}
	}
	return id, nil
}

func cliJoin(o *statusOptions, c *controlClient, out io.Writer, args []string) error {
	id, err := networkArg(args[0])
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do("POST", "/network/"+id.String(), &raw); err != nil {
		return err
	}
	if o.json {
		return printJSON(out, raw)
	}
	_, err = fmt.Fprintln(out, "200 join OK")
	return err
}

func cliLeave(o *statusOptions, c *controlClient, out io.Writer, args []string) error {
	id, err := networkArg(args[0])
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do("DELETE", "/network/"+id.String(), &raw); err != nil {
		return err
	}
	if o.json {
		return printJSON(out, raw)
	}
	_, err = fmt.Fprintln(out, "200 leave OK")
	return err
}
