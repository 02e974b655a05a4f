// Command matrix benchmarks the same programs side by side over pairs of endpoints — plain
// veth (the physical limit), zerotier-one 1.14 with its kernel TAP and ztnc-run members (both
// when ZT1_BIN is set), and ztnc-run members on a network of our own root and controller
// (ztnc-self) — and prints a markdown table with ratios.
//
// For each pair, servers run on endpoint A and clients on endpoint B: iperf3 TCP (1 and 4
// streams, both directions) and UDP (1400-byte datagrams), nginx under wrk (keep-alive and new
// connection per request), ping; ZeroTier pairs also report B's cold start (time to network
// OK and to first byte). Measurements are interleaved across pairs so that background load
// hits all pairs alike. Needs root (network namespaces).
//
// Each pair's processes run in a cgroup of their own (v2, or v1's cpuacct), so that every rate
// comes with the CPU time the pair spent per unit of work (per GB, 1k requests or 1M
// datagrams): on a loaded machine that is steadier than the rate, and it shows the cost that
// a faster machine would not hide.
//
// To compare two builds of ztnc-run, give the other one as -ztnc-base: it runs as pair
// ztnc-self-base in the same interleaved rounds as ztnc-self.
//
//	go run ./bench/matrix [-duration 10s] [-runs 1] [-pairs veth,zt1,ztnc,ztnc-self] [-metrics REGEXP]
//	    [-ztnc-run bin/ztnc-run] [-ztnc-base OTHER] [-ztnc-flags FLAGS] [-ztnc-cpuprofile DIR]
//	    [-startup-runs 5] [-o FILE] [-v]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "length of each iperf3 and wrk run")
	runs := flag.Int("runs", 1, "measurements per metric and pair (interleaved); the table shows the median")
	only := flag.String("pairs", "", "comma-separated pairs to run (default: every pair that can run here; -ztnc-base adds ztnc-self-base)")
	metrics := flag.String("metrics", "", "run only the measurements whose first row's name matches this regular expression")
	outFile := flag.String("o", "", "also write the report to this file")
	verbose := flag.Bool("v", false, "log commands and their output to stderr")
	flag.IntVar(&startupRuns, "startup-runs", 5, "ztnc-self pairs: starts of B measured per kind of home (fresh, cached); the table shows the median")
	flag.StringVar(&ztncProfileDir, "ztnc-cpuprofile", "", "every program run by a ztnc-run member writes a CPU profile into this directory (<pair>-<host>-<n>-<program>.prof)")
	flag.Func("ztnc-flags", "extra flags for every ztnc-run member (space-separated, e.g. \"-v\")", func(s string) error {
		ztncFlags = strings.Fields(s)
		return nil
	})
	flag.Parse()
	if *runs < 1 || *duration < time.Second || startupRuns < 1 {
		fmt.Fprintln(os.Stderr, "matrix: -runs and -startup-runs must be ≥ 1 and -duration ≥ 1s")
		os.Exit(2)
	}

	selected, err := selectPairs(*only)
	if err != nil {
		fmt.Fprintf(os.Stderr, "matrix: %v\n", err)
		os.Exit(2)
	}
	ms, err := selectMeasurements(measurements(*duration), *metrics)
	if err != nil {
		fmt.Fprintf(os.Stderr, "matrix: %v\n", err)
		os.Exit(2)
	}
	log := io.Writer(io.Discard)
	if *verbose {
		log = os.Stderr
	}

	var report string
	err = lab.Standalone("bench-matrix", log, func(t lab.T) {
		lab.Require(t, "iperf3", "wrk", "nginx", "ping", "curl", "busybox", "python3")
		env := describeMachine()
		res := newResults(selected, ms)
		fmt.Fprintf(os.Stderr, "matrix: %s\n", env.load())

		type endpoints struct {
			a, b *lab.Endpoint
			cpu  *cpuGroup
		}
		eps := make([]endpoints, len(selected))
		for i, p := range selected {
			fmt.Fprintf(os.Stderr, "matrix: setting up %s\n", p.name)
			cpu := newCPUGroup(t, p.name)
			cpu.within(func() {
				a, b, st := p.setup(t)
				eps[i] = endpoints{a, b, cpu}
				for _, h := range []*lab.Host{a.Host, b.Host} {
					if err := h.Sysctl(portRange[0], portRange[1]); err != nil {
						t.Fatalf("%v", err)
					}
				}
				res.startup[i] = st
				// Warm up paths and neighbour caches; not measured.
				if err := warmUp(t, a, b); err != nil {
					fmt.Fprintf(os.Stderr, "matrix: %s: warm-up ping failed: %v\n", p.name, err)
				}
			})
		}
		for mi, m := range ms {
			for run := 0; run < *runs; run++ {
				for pi, p := range selected {
					fmt.Fprintf(os.Stderr, "matrix: %s: %s (run %d/%d)\n", p.name, m.rows[0].name, run+1, *runs)
					ep := eps[pi]
					ep.cpu.within(func() {
						vals, note, err := m.run(t, ep.a, ep.b, ep.cpu, *duration)
						res.add(mi, pi, vals, note, err)
					})
				}
			}
		}
		env.loadAfter = loadavg()
		report = res.markdown(env, *duration, *runs)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "matrix: %v (run with -v for the log)\n", err)
		os.Exit(1)
	}
	fmt.Print(report)
	if *outFile != "" {
		if err := os.WriteFile(*outFile, []byte(report), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "matrix: %v\n", err)
			os.Exit(1)
		}
	}
}

// portRange widens the ephemeral ports of every endpoint's namespace: a new-connection run
// opens more connections than the default 28232 ports, and reusing a port whose previous
// connection the server still holds in TIME-WAIT can stall a client for a second.
var portRange = [2]string{"net.ipv4.ip_local_port_range", "1024 65535"}

// selectPairs returns the pairs named in list (comma-separated), or every available pair, in
// the order of pairs (their column order: ratios are later columns over earlier ones).
// -ztnc-base selects pair ztnc-self-base too.
func selectPairs(list string) ([]pair, error) {
	var out []pair
	if list == "" {
		for _, p := range pairs {
			if why := p.available(); why == "" {
				out = append(out, p)
			} else {
				fmt.Fprintf(os.Stderr, "matrix: skipping pair %s: %s\n", p.name, why)
			}
		}
		return out, nil
	}
	names := strings.Split(list, ",")
	if *ztncBase != "" {
		names = append(names, "ztnc-self-base")
	}
	for _, name := range names {
		if !slices.ContainsFunc(pairs, func(p pair) bool { return p.name == name }) {
			return nil, fmt.Errorf("unknown pair %q", name)
		}
	}
	for _, p := range pairs {
		if !slices.Contains(names, p.name) {
			continue
		}
		if why := p.available(); why != "" {
			return nil, fmt.Errorf("pair %s cannot run: %s", p.name, why)
		}
		out = append(out, p)
	}
	return out, nil
}

// selectMeasurements keeps the measurements whose first row's name matches expr ("" keeps all).
func selectMeasurements(ms []measurement, expr string) ([]measurement, error) {
	if expr == "" {
		return ms, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("-metrics: %w", err)
	}
	var out []measurement
	for _, m := range ms {
		if re.MatchString(m.rows[0].name) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-metrics %q matches no measurement", expr)
	}
	return out, nil
}

// machine describes where and under what load the benchmark ran.
type machine struct {
	start      time.Time
	kernel     string
	cpu        string
	cpus       int
	tools      []string
	loadBefore string
	loadAfter  string
	busyBefore float64 // share of all CPUs busy during one second before the run, 0–1
}

func describeMachine() *machine {
	m := &machine{start: time.Now().UTC(), cpus: cpuCount(), loadBefore: loadavg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	m.cpu = cpuModel()
	m.busyBefore = cpuBusy(time.Second)
	for _, argv := range [][]string{
		{"iperf3", "--version"}, {"wrk", "-v"}, {"nginx", "-v"}, {os.Getenv(lab.ZT1BinEnv), "-v"},
	} {
		if argv[0] == "" {
			continue
		}
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if argv[0] == os.Getenv(lab.ZT1BinEnv) {
			line = "zerotier-one " + line
		}
		m.tools = append(m.tools, line)
	}
	return m
}

func (m *machine) load() string {
	return fmt.Sprintf("load average %s; %.0f%% of %d CPUs busy in the second before start", m.loadBefore, 100*m.busyBefore, m.cpus)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func cpuCount() int {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) > 3 && strings.HasPrefix(line, "cpu") && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	return n
}

// cpuBusy samples /proc/stat over d and returns the busy share of all CPUs.
func cpuBusy(d time.Duration) float64 {
	read := func() (idle, total float64) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0
		}
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			total += v
			if i == 3 || i == 4 { // idle, iowait
				idle += v
			}
		}
		return idle, total
	}
	i0, t0 := read()
	time.Sleep(d)
	i1, t1 := read()
	if t1 <= t0 {
		return 0
	}
	return 1 - (i1-i0)/(t1-t0)
}
