// Command ztnc-run runs unmodified programs with their sockets on virtual networks inside this
// process instead of the host's. It is where the packages meet: it starts the ZeroTier node
// (zt) and joins its networks, gives each network a stack (netstack) with the network as its
// Ethernet port, and launches the program under the seccomp supervisor (notify, supervisor)
// that puts its sockets on those stacks; around that, the subcommands (root, controller,
// service, attach, status...), the control socket, published ports, health and the
// environment of a container entrypoint.
//
//	ztnc-run [flags] -- CMD [ARGS...]
//
// Exit status: CMD's own (128+N when a signal N killed it), 125 when ztnc-run itself fails, 126
// when CMD cannot be executed, 127 when it is not found.
package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes of ztnc-run's own failures (the shell's conventions).
const (
	exitFailure     = 125
	exitCannotExec  = 126
	exitNotFound    = 127
	exitSignalsBase = 128
)

// exitError carries an exit status out of a command; msg (if any) is printed first.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	os.Exit(execute(os.Args[1:]))
}

func execute(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.msg != "" {
			reportError(root, ee.msg)
		}
		return ee.code
	default:
		// Flag and usage errors, and failures before the program started.
		reportError(root, err.Error())
		return exitFailure
	}
}

func newRootCmd() *cobra.Command {
	var o runOptions
	root := &cobra.Command{
		Use:   "ztnc-run [flags] -- CMD [ARGS...]",
		Short: "Run a program with its sockets on a virtual network",
		Long: `ztnc-run runs CMD, and every process it starts, with their sockets (TCP, UDP and ICMP;
IPv4 and IPv6) on a user-space network stack inside ztnc-run instead of the host's: no root,
no TUN device, no change to the host. Dynamically and statically linked programs both work.

With --nwid, ztnc-run is a ZeroTier node: it prints the node's address (authorize it on the
network's controller) and starts CMD once the network is OK with an address (--wait). With
--local the network exists only inside this ztnc-run. Destinations outside the virtual
networks use the host's network, unless --isolate.

Every flag can also be set from the environment: --some-flag is ZTNC_SOME_FLAG (ZT_NC_NWID is
--nwid, as in the 2015 beta). Exit status: CMD's (128+N when signal N killed it); 125 when
ztnc-run fails; 126 when CMD cannot be executed, 127 when it is not found.`,
		Example: `  ztnc-run --nwid 8056c2e21c000001 -- python3 -m http.server 8080
  ztnc-run --nwid 8056c2e21c000001 --isolate -p 8080:80 -- nginx -g 'daemon off;'
  ztnc-run --local 10.9.0.1/24 -- sh -c 'python3 -m http.server 8080 & sleep 1; curl http://10.9.0.1:8080/'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("no program given: ztnc-run [flags] -- CMD [ARGS...] (see --help)")
			}
			return nil
		},
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if attached, err := attachFromEnv(cmd, &o, args); attached || err != nil {
				return err
			}
			return runProgram(cmd.Context(), &o, args)
		},
	}
	// Everything from CMD on belongs to CMD, even without "--".
	root.Flags().SetInterspersed(false)
	root.Flags().StringArrayVar(&o.local, "local", nil, "run on a private network inside ztnc-run with this address/prefix (repeatable: IPv4 and IPv6)")
	root.Flags().StringVar(&o.dnsName, "dns-name", defaultDNSName(), "this member's name on a --local network: NAME."+localDomain+" resolves to its addresses")
	root.Flags().StringArrayVar(&o.addHosts, "add-host", nil, "add NAME=ADDRESS to the virtual network's names (NAME."+localDomain+" unless NAME has a dot; repeatable)")
	root.PersistentFlags().BoolVarP(&o.verbose, "verbose", "v", false, "log every emulated socket call (debug level)")
	root.PersistentFlags().StringVar(&o.logFormat, "log-format", "text", "log format on stderr: text or json")
	root.PersistentFlags().StringVar(&o.cpuProfile, "cpuprofile", "", "write a Go CPU profile of ztnc-run to this file (for benchmarks)")
	root.PersistentFlags().MarkHidden("cpuprofile")
	root.CompletionOptions.DisableDefaultCmd = true
	o.net.addFlags(root.Flags())
	o.host.addFlags(root.Flags())
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd) }
	root.AddCommand(newIdtoolCmd(), newRootServerCmd(), newControllerCmd())
	root.AddCommand(newServiceCmd(), newAttachCmd())
	root.AddCommand(newStatusCmds()...)
	return root
}
