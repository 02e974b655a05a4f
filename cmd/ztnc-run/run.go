package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/notify"
	"github.com/ztnc/ztnc/supervisor/resolver"
)

type runOptions struct {
	net        netOptions
	host       hostOptions
	local      []string
	dnsName    string
	addHosts   []string
	verbose    bool
	logFormat  string
	cpuProfile string
}

// localMTU is the MTU of --local networks: ZeroTier's, so that programs see what they will on
// a real network.
const localMTU = 2800

// localMAC is the Ethernet address of the --local stack's port (locally administered).
var localMAC = [6]byte{0x02, 0x7a, 0x74, 0x6e, 0x63, 0x01}

func newLogger(o *runOptions) (*slog.Logger, error) {
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
}

// localIPv6Prefix is the unique local /64 of --local networks given no IPv6 prefix: fd7a:746e:63
// spells "ztnc". A fixed prefix keeps the derived address predictable; fd00::/64, the obvious
// choice, is too often the host's own LAN, which would then be unreachable from inside.
var localIPv6Prefix = [8]byte{0xfd, 0x7a, 0x74, 0x6e, 0x63, 0x00, 0x00, 0x00}

// localPrefixes parses --local. When no IPv6 prefix is given, localIPv6Prefix with the first
// IPv4 address in the low 32 bits is added (10.9.0.1 → fd7a:746e:6300::a09:1), so IPv6
// programs work too.
func localPrefixes(vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var first4 netip.Addr
	has6 := false
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("--local %q: want an address with its prefix length, like 10.9.0.1/24", s)
			}
			if p.Addr().Is4In6() {
				return nil, fmt.Errorf("--local %q: use the plain IPv4 form", s)
			}
			if p.Addr().Is4() && !first4.IsValid() {
				first4 = p.Addr()
			}
			has6 = has6 || p.Addr().Is6()
			out = append(out, p)
		}
	}
	if !has6 && first4.IsValid() {
		a4 := first4.As4()
		var a16 [16]byte
		copy(a16[:], localIPv6Prefix[:])
		copy(a16[12:], a4[:])
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(a16), 64))
	}
	return out, nil
}

func runProgram(ctx context.Context, o *runOptions, args []string) error {
	limitProcs()
	headroom, memLimit := tuneGC()
	log, err := newLogger(o)
	if err != nil {
		return err
	}
	log.Debug("garbage collector", "headroom_mib", headroom>>20, "cgroup_memory_limit_mib", memLimit>>20)
	ids, err := o.net.networkIDs()
	if err != nil {
		return err
	}
	switch {
	case len(ids) == 0 && len(o.local) == 0:
		return errors.New("no network: give --nwid NETWORK_ID, or --local ADDRESS/PREFIX for a private one (e.g. --local 10.9.0.1/24)")
	case len(ids) > 0 && len(o.local) > 0:
		return errors.New("--nwid and --local cannot be combined")
	}
	pol, err := o.host.policy()
	if err != nil {
		return err
	}
	path, err := lookPath(args[0])
	if err != nil {
		return err
	}
	startCtx, startDone := interruptible(ctx)
	defer startDone()
	host, err := startHost(log, &o.host)
	if err != nil {
		return err
	}
	defer host.close()

	var sv *supervision
	var prog notify.Program
	if len(ids) > 0 {
		if err := host.claimHome(startCtx, &o.net); err != nil {
			return err
		}
		node, err := startNode(ctx, log, &o.net)
		if err != nil {
			return err
		}
		defer node.Close()
		ns, err := newNetset(ctx, log, node, pol, o.addHosts)
		if err != nil {
			return err
		}
		defer ns.close()
		defer func() { logCounters(log, node, ns.joined()) }()
		for _, id := range ids {
			if _, err := ns.join(id); err != nil {
				return fmt.Errorf("join %s: %w", id, err)
			}
		}
		if prog, err = notify.Compile(pol.Spec()); err != nil {
			return err
		}
		at, err := host.serveNetset(node, ns, prog)
		if err != nil {
			return err
		}
		// Programs attached to this instance end with it, before its networks close.
		defer at.stop("the ztnc-run running "+args[0]+" is exiting", attachStopGrace)
		if err := waitNetworks(startCtx, node, ns.joined(), o.net.wait); err != nil {
			if sig := startDone(); sig != 0 {
				return interrupted(sig, "waiting for the network")
			}
			return err
		}
		var release func()
		if sv, release, err = ns.supervision(); err != nil {
			return err
		}
		defer release()
	} else {
		prefixes, err := localPrefixes(o.local)
		if err != nil {
			return err
		}
		hub := netstack.NewHub()
		port := hub.NewPort(localMAC, localMTU)
		stack, err := netstack.New(port, netstack.Config{})
		if err != nil {
			return fmt.Errorf("network stack: %w", err)
		}
		defer stack.Close()
		if err := stack.SetAddresses(prefixes); err != nil {
			return fmt.Errorf("--local: %w", err)
		}
		log.Debug("local network", "addresses", prefixes)
		host.serveNetworks(nil, []attachment{{stack: stack}})
		names, err := newLocalNames(stack, o.dnsName, o.addHosts)
		if err != nil {
			return err
		}
		dns, redirects, err := startResolver(log, stack, func() []resolver.Network { return []resolver.Network{names} }, upstreamResolvers(pol), pol.Outages)
		if err != nil {
			return err
		}
		defer dns.Close()
		sv = &supervision{stacks: []*netstack.Stack{stack}, policy: pol, redirects: redirects}
		if prog, err = notify.Compile(pol.Spec()); err != nil {
			return err
		}
	}

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if sig := startDone(); sig != 0 {
		return interrupted(sig, "starting")
	}
	return runSupervised(log, sv, prog, path, args, host.inst)
}

// lookPath finds the program like a shell does, failing with the shell's exit codes.
func lookPath(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	var errno syscall.Errno
	switch {
	case errors.Is(err, exec.ErrNotFound) && !strings.Contains(name, "/"):
		return "", &exitError{exitNotFound, name + ": command not found"}
	case errors.Is(err, fs.ErrNotExist):
		return "", &exitError{exitNotFound, name + ": no such file or directory"}
	case errors.As(err, &errno):
		// Found but not runnable: a directory, not executable, a path through a file.
		return "", &exitError{exitCannotExec, name + ": " + errno.Error()}
	}
	return "", &exitError{exitCannotExec, fmt.Sprintf("%s: %v", name, err)}
}

// runSupervised starts the program under the filter, serves it, and returns its exit status.
func runSupervised(log *slog.Logger, sv *supervision, prog notify.Program, path string, args []string, inst *instance) error {
	return launch(prog, path, args, func(p *notify.Process) (<-chan error, func(int), error) {
		sup, err := sv.start(p.Listener, log)
		if err != nil {
			return nil, nil, err
		}
		remove := inst.addProgram(&program{pid: p.Pid, argv: args, sup: sup})
		served := make(chan error, 1)
		go func() { served <- sup.Serve() }()
		return served, func(int) {
			remove()
			sup.Close()
		}, nil
	})
}

// superviseFunc puts a program that launch started under supervision. It returns a channel
// that yields the supervision's failure (the program must not run on; nil: no process uses
// the filter any more) and a function that launch calls with the program's exit status once
// the program and what it left running have ended.
type superviseFunc func(p *notify.Process) (failed <-chan error, done func(status int), err error)

// launch starts the program under the filter prog as ztnc-run's child, has it supervised, and
// returns its exit status (as an *exitError unless 0).
func launch(prog notify.Program, path string, args []string, supervise superviseFunc) error {
	// Orphaned descendants are reparented to us: we reap them, and can find and stop them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	sig := forwardSignals()
	defer sig.stop()

	fg := foregroundTTY()
	p, err := notify.Start(prog, notify.Command{
		Path:  path,
		Args:  args,
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys: &syscall.SysProcAttr{
			Setpgid:    true,
			Foreground: fg,
			Ctty:       0,
			// If ztnc-run dies, the program must not run on without its network.
			Pdeathsig: syscall.SIGKILL,
		},
	})
	if err != nil {
		return err
	}
	defer p.Release()
	if fg {
		defer restoreForeground()
	}

	failed, done, err := supervise(p)
	if err != nil {
		killTree(syscall.SIGKILL)
		reapAll()
		return err
	}
	if err := p.WaitExec(); err != nil {
		reapAll()
		var ee *notify.ExecError
		if !errors.As(err, &ee) {
			done(exitFailure)
			return err
		}
		code := exitCannotExec
		if ee.Errno == unix.ENOENT {
			code = exitNotFound
		}
		done(code)
		return &exitError{code, err.Error()}
	}
	sig.target(p.Pid)

	status, err := waitMain(p.Pid, failed, fg)
	if err != nil {
		// The supervisor failed: nothing may run on with a broken network.
		killTree(syscall.SIGKILL)
		reapAll()
		done(exitFailure)
		return &exitError{exitFailure, err.Error()}
	}
	stopDescendants()
	code := 0
	switch {
	case status.Exited():
		code = status.ExitStatus()
	case status.Signaled():
		code = exitSignalsBase + int(status.Signal())
	}
	done(code)
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}
