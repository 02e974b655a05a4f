package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ztnc/ztnc/tests/lab"
)

// localNet and localNet6 are the --local networks of the ztnc placements and probes.
// Documentation ranges, not the 10.9.0.0/24 of ztnc-run's examples: should a socket ever
// escape to the host kernel, it must not reach a real network (it runs in a namespace of its
// own anyway).
const (
	localNet  = "198.51.100.1/24"
	localNet6 = "2001:db8:198::1/64"
)

// ztncRun is the ztnc-run binary under test and what it says it supports.
type ztncRun struct {
	Path string
	Help string // `ztnc-run --help`, stdout and stderr
	// Source says where the binary came from, for the report.
	Source string

	featOnce sync.Once
	missing  map[Feature]string // why a feature does not work under --local
}

type ztncState struct {
	once sync.Once
	z    *ztncRun
	err  error
}

// Ztnc returns ztnc-run: $ZTNC_RUN, else built from this tree's cmd/ztnc-run. An
// *Unavailable error says why there is none.
func (e *Env) Ztnc() (*ztncRun, error) {
	e.ztnc.once.Do(func() { e.ztnc.z, e.ztnc.err = e.findZtnc() })
	return e.ztnc.z, e.ztnc.err
}

func (e *Env) findZtnc() (*ztncRun, error) {
	path := os.Getenv("ZTNC_RUN")
	source := "$ZTNC_RUN=" + path
	if path != "" {
		if _, err := exec.LookPath(path); err != nil {
			return nil, unavailable("ZTNC_RUN=%s: %v", path, err)
		}
	} else {
		root, err := moduleRoot()
		if err != nil {
			return nil, unavailable("ztnc-run: %v", err)
		}
		if _, err := os.Stat(filepath.Join(root, "cmd", "ztnc-run")); err != nil {
			return nil, unavailable("this tree has no cmd/ztnc-run yet (or set ZTNC_RUN)")
		}
		path = filepath.Join(e.Dir, "ztnc-run")
		if err := e.timed("go build ./cmd/ztnc-run", false, func() error {
			_, err := run(root, nil, goCommand(), "build", "-o", path, "./cmd/ztnc-run")
			return err
		}); err != nil {
			return nil, fmt.Errorf("build ztnc-run: %w", err)
		}
		source = "ztnc-run built from this tree"
		if rev, err := run(root, nil, "git", "describe", "--always", "--dirty"); err == nil {
			source += " at " + strings.TrimSpace(rev)
		}
	}
	help, _ := exec.Command(path, "--help").CombinedOutput()
	return &ztncRun{Path: path, Help: string(help), Source: source}, nil
}

// lacksFlags lists the flags that `ztnc-run --help` does not mention.
func (z *ztncRun) lacksFlags(flags ...string) []string {
	var out []string
	for _, f := range flags {
		if !strings.Contains(z.Help, f+" ") && !strings.Contains(z.Help, f+"=") {
			out = append(out, f)
		}
	}
	return out
}

// hasSubcommand reports whether `ztnc-run NAME --help` succeeds and mentions every flag.
func (z *ztncRun) hasSubcommand(name string, flags ...string) error {
	out, err := exec.Command(z.Path, name, "--help").CombinedOutput()
	if err != nil {
		return fmt.Errorf("`ztnc-run %s --help`: %v: %s", name, err, firstLine(string(out)))
	}
	for _, f := range flags {
		if !strings.Contains(string(out), f) {
			return fmt.Errorf("`ztnc-run %s --help` does not mention %s", name, f)
		}
	}
	return nil
}

// probeLocal checks that `ztnc-run --local localNet [flags] -- true` works, in a namespace of
// its own.
func (z *ztncRun) probeLocal(t lab.T, flags ...string) error {
	t.Helper()
	h := lab.New(t, lab.Config{}).AddHost("probe", "")
	argv := append(append([]string{z.Path, "--local", localNet}, flags...), "--", "true")
	if _, err := h.Exec(t, argv[0], argv[1:]...); err != nil {
		return fmt.Errorf("`%s` fails: %v", lab.Quote(append([]string{"ztnc-run"}, argv[1:]...)), err)
	}
	return nil
}

// missingFeatures probes, once, whether UDP and ICMP work under `ztnc-run --local` (in a
// namespace of its own), and says for each feature that does not work why. agent is the argv
// of an agent.
func (z *ztncRun) missingFeatures(t lab.T, agent []string) map[Feature]string {
	t.Helper()
	z.featOnce.Do(func() {
		z.missing = make(map[Feature]string)
		if err := z.probeLocal(t); err != nil {
			for _, f := range []Feature{UDP, ICMP, IPv6} {
				z.missing[f] = "cannot probe: " + err.Error()
			}
			return
		}
		h := lab.New(t, lab.Config{}).AddHost("probe", "")
		addr := strings.Split(localNet, "/")[0]
		wrap := []string{z.Path, "--local", localNet, "--"}
		probes := map[Feature]struct {
			what string
			argv []string
		}{
			UDP:  {"a UDP socket on " + addr + " sends to itself", append(append(wrap, agent...), "probe-udp", addr)},
			ICMP: {"ping -c 1 " + addr, append(wrap, "ping", "-n", "-c", "1", "-W", "2", addr)},
		}
		// IPv6 is there when --local takes an IPv6 prefix; whether it works is the entries' job.
		if err := z.probeLocal(t, "--local", localNet6); err != nil {
			z.missing[IPv6] = fmt.Sprintf("pending issue #5: ztnc-run --local takes no IPv6 prefix (%v)", err)
		}
		for f, p := range probes {
			argv := h.Argv(p.argv...)
			t.Logf("probe %s: %s", f, lab.Quote(argv))
			out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
			if err != nil {
				z.missing[f] = fmt.Sprintf("pending issue #5: %s does not work under ztnc-run yet (probe: %s: %v: %s)",
					f, p.what, err, lastLines(strings.TrimSpace(string(out)), 1))
			}
		}
	})
	return z.missing
}
