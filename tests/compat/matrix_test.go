package compat

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ztnc/ztnc/tests/compat/agent"
)

var (
	flagPlacements = flag.String("compat.placements", "",
		"placements to run: all (every one available here), best (the best available), or names (host,netns,local,zt); "+
			"default all, best with -short; named placements that cannot run fail")
	flagReport = flag.String("compat.report", "", "write the matrix as Markdown to this file (docs/compatibility.md)")
	flagStrict = flag.Bool("compat.strict", os.Getenv("CI") != "",
		"fail entries whose programs are not installed instead of skipping them (default: on when $CI is set)")
	flagParallel = flag.Int("compat.parallel", 4, "entries run at once when -test.parallel is not given")
)

// agentArg as the first argument makes the test binary an agent (see package agent).
const agentArg = "compat-agent"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == agentArg {
		os.Exit(agentMain(os.Args[2:]))
	}
	flag.Parse()
	// Entries wait on servers more than they use the CPU: run more than GOMAXPROCS at once.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", fmt.Sprint(*flagParallel))
	}
	os.Exit(m.Run())
}

// agentMain runs the agent, or one of its probes.
func agentMain(args []string) int {
	switch {
	case len(args) == 0:
		if err := agent.Serve(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "compat agent:", err)
			return 1
		}
		return 0
	case len(args) == 2 && args[0] == "probe-udp":
		addr, err := netip.ParseAddr(args[1])
		if err == nil {
			err = agent.ProbeUDP(addr)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe-udp:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "compat agent: usage: compat-agent [probe-udp ADDR]")
	return 2
}

func agentArgv(t *testing.T) []string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, agentArg}
}

// TestMatrix runs every entry (the fast ones with -short) in the chosen placements; see
// docs/compatibility.md and `make compat`.
func TestMatrix(t *testing.T) {
	env := NewEnv(t, agentArgv(t))
	m := NewMatrix(env, *flagStrict)
	entries := Entries()
	if testing.Short() {
		var short []*Entry
		for _, e := range entries {
			if e.Short {
				short = append(short, e)
			}
		}
		entries = short
	}
	if *flagReport != "" {
		t.Cleanup(func() { writeReport(t, m.Report(entries), *flagReport) })
	}

	choice := *flagPlacements
	if choice == "" {
		choice = "all"
		if testing.Short() {
			choice = "best"
		}
	}
	placements, named := choosePlacements(t, choice)
	opened := 0
	for _, p := range placements {
		t.Run(p.Name(), func(t *testing.T) {
			if choice == "best" && opened > 0 {
				m.Opened(p, nil, errors.New("a better placement ran"))
				t.Skip("a better placement ran")
			}
			nw, err := p.Open(t, env)
			if err != nil {
				m.Opened(p, nil, err)
				if IsUnavailable(err) && !named {
					t.Skipf("%s: %v", p.Name(), err)
				}
				t.Fatalf("%s: %v", p.Name(), err)
			}
			m.Opened(p, nw, nil)
			opened++
			for _, e := range entries {
				t.Run(e.Name, func(t *testing.T) {
					t.Parallel()
					m.Run(t, p.Name(), nw, e)
				})
			}
		})
	}
}

// choosePlacements turns -compat.placements into placements; named is true when the user
// listed them by name (then one that cannot run is a failure, not a skip).
func choosePlacements(t *testing.T, choice string) (ps []Placement, named bool) {
	switch choice {
	case "all":
		return Placements(), false
	case "best":
		ps = Placements()
		slices.Reverse(ps)
		return ps, false
	}
	byName := make(map[string]Placement)
	for _, p := range Placements() {
		byName[p.Name()] = p
	}
	for _, name := range strings.Split(choice, ",") {
		p, ok := byName[strings.TrimSpace(name)]
		if !ok {
			t.Fatalf("-compat.placements: no placement %q (have host, netns, local, zt, all, best)", name)
		}
		ps = append(ps, p)
	}
	return ps, true
}

func writeReport(t *testing.T, r Report, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	if err := r.Markdown(f); err != nil {
		t.Errorf("report: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("report: %v", err)
	}
	t.Logf("report written to %s", path)
}
