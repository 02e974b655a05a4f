package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ztnc/ztnc/tests/lab"
)

func TestParsers(t *testing.T) {
	wrkOut := `Running 2s test @ http://192.0.2.1:8080/index.html
  2 threads and 32 connections
  275796 requests in 2.00s, 213.48MB read
  Socket errors: connect 0, read 12, write 0, timeout 0
Requests/sec: 137898.12
Transfer/sec:    106.74MB
`
	pingOut := `PING 192.0.2.1 (192.0.2.1) 56(84) bytes of data.
64 bytes from 192.0.2.1: icmp_seq=1 ttl=64 time=0.031 ms
64 bytes from 192.0.2.1: icmp_seq=2 ttl=64 time=0.020 ms
64 bytes from 192.0.2.1: icmp_seq=3 ttl=64 time=0.090 ms
64 bytes from 192.0.2.1: icmp_seq=4 ttl=64 time=0.025 ms

--- 192.0.2.1 ping statistics ---
5 packets transmitted, 4 received, 20% packet loss, time 41ms
`
	// 25 replies: the first pingWarmup (10 ms each) are left out of the mean, not the median.
	var steadyPing strings.Builder
	for i := range 25 {
		rtt := 1.0
		if i < pingWarmup {
			rtt = 10
		}
		fmt.Fprintf(&steadyPing, "64 bytes from 192.0.2.1: icmp_seq=%d ttl=64 time=%g ms\n", i+1, rtt)
	}
	tcpOut := `{"start":{},"end":{"sum_sent":{"bits_per_second":2.1e9},"sum_received":{"seconds":10.0,"bytes":2.5e9,"bits_per_second":2e9}}}`
	udpOut := `{"end":{"sum_received":{"seconds":2.0,"bytes":1.4e6,"packets":2000,"lost_packets":500}}}`
	for _, tc := range []struct {
		name  string
		parse func(string) ([]float64, string, error)
		in    string
		want  []float64
		note  string
	}{
		{"wrk", parseWrk, wrkOut, []float64{137898.12}, "Socket errors: connect 0, read 12, write 0, timeout 0"},
		{"ping", parsePing, pingOut, []float64{0.0415, 0.028}, "5 packets transmitted, 4 received, 20% packet loss"},
		{"ping after warm-up", parsePing, steadyPing.String(), []float64{1, 1}, ""},
		{"iperf3 tcp", parseIperfTCP, tcpOut, []float64{2}, ""},
		{"iperf3 udp", parseIperfUDP, udpOut, []float64{750, 25}, ""},
		{"idle client", parseIdle, "keep-alive 0.5\nkeep-alive 0.7\nkeep-alive 9.0\nclose 1.0\nclose 1.2\n", []float64{0.7, 1.1}, ""},
		{"footprint", parseFootprint, "before 17.5 12\nchurned 81.25 420\nidle 26 19\n", []float64{81.25, 26, 7}, ""},
		{"footprint without a node", parseFootprint, "none\n", []float64{math.NaN(), math.NaN(), math.NaN()}, ""},
		{"held connections", parseHeld, "before 17.5 12\nheld 40.25 2012\nopened 70 2000\nwoken 60.5 2000\n", []float64{22.75, 52.5, 43}, ""},
		{"held connections without a node", parseHeld, "none\n", []float64{math.NaN(), math.NaN(), math.NaN()}, ""},
	} {
		got, note, err := tc.parse(tc.in)
		if err != nil || note != tc.note || len(got) != len(tc.want) {
			t.Errorf("%s: %v %q %v", tc.name, got, note, err)
			continue
		}
		for i := range got {
			if math.IsNaN(got[i]) != math.IsNaN(tc.want[i]) || math.Abs(got[i]-tc.want[i]) > 1e-9 {
				t.Errorf("%s: value %d = %v, want %v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
	for _, tc := range []struct {
		name  string
		parse func(string) ([]float64, string, error)
		in    string
	}{
		{"wrk without rate", parseWrk, "unable to connect to 192.0.2.1:8080 Connection refused\n"},
		{"ping without replies", parsePing, "PING 192.0.2.1 (192.0.2.1) 56(84) bytes of data.\n"},
		{"iperf3 error", parseIperfTCP, `{"error":"unable to connect to server: Connection refused"}`},
		{"iperf3 garbage", parseIperfTCP, "iperf3: error"},
		{"idle client without one mode", parseIdle, "keep-alive 0.5\n"},
		{"footprint without its last look", parseFootprint, "before 17.5 12\nchurned 81.25 420\n"},
		{"held connections without the wake-up's look", parseHeld, "before 17.5 12\nheld 40.25 2012\nopened 70 2000\n"},
		{"iperf3 udp nothing sent", parseIperfUDP, `{"end":{"sum_received":{"seconds":1,"packets":0}}}`},
	} {
		if _, _, err := tc.parse(tc.in); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{137898.12: "137898", 12.84: "12.8", 1.144: "1.14", 0.0893: "0.0893", 0.023: "0.023"} {
		if got := number(v); got != want {
			t.Errorf("number(%v) = %s, want %s", v, got, want)
		}
	}
}

func TestMeasurementCommands(t *testing.T) {
	ms := measurements(10 * time.Second)
	got := strings.Join(ms[1].command("203.0.113.7"), " ")
	if got != "iperf3 -c 203.0.113.7 -p 5201 -t 10 -J -R" {
		t.Errorf("TCP A→B command: %s", got)
	}
	for _, m := range ms {
		if strings.Contains(strings.Join(m.command("x"), " "), "{A}") {
			t.Errorf("placeholder left in %v", m.command("x"))
		}
	}
	if _, err := selectPairs("veth,nope"); err == nil {
		t.Errorf("selectPairs accepted an unknown pair")
	}
}

func TestSelect(t *testing.T) {
	ms := measurements(time.Second)
	got, err := selectMeasurements(ms, "^(TCP 1|HTTP keep)")
	if err != nil || len(got) != 3 || got[2].rows[0].name != "HTTP keep-alive -c32" {
		t.Errorf("selectMeasurements: %d measurements, %v", len(got), err)
	}
	for _, expr := range []string{"(", "nothing like it"} {
		if _, err := selectMeasurements(ms, expr); err == nil {
			t.Errorf("selectMeasurements(%q) accepted", expr)
		}
	}

	// Columns follow pairs, whatever the order asked for; -ztnc-base adds ztnc-self-base.
	dir := t.TempDir()
	bin := filepath.Join(dir, "ztnc-run")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	defer func(run, base string) { *ztncRun, *ztncBase = run, base }(*ztncRun, *ztncBase)
	*ztncRun, *ztncBase = bin, bin
	ps, err := selectPairs("ztnc-self,veth")
	var names []string
	for _, p := range ps {
		names = append(names, p.name)
	}
	if err != nil || strings.Join(names, ",") != "veth,ztnc-self-base,ztnc-self" {
		t.Errorf("selectPairs: %v, %v", names, err)
	}
	*ztncBase = filepath.Join(dir, "missing")
	if _, err := selectPairs("ztnc-self"); err == nil {
		t.Errorf("selectPairs accepted a missing -ztnc-base binary")
	}
}

func TestMemberWrap(t *testing.T) {
	defer func(flags []string, dir string) { ztncFlags, ztncProfileDir = flags, dir }(ztncFlags, ztncProfileDir)
	ztncFlags, ztncProfileDir = []string{"-v"}, "/p"
	wrap := memberWrap("ztnc-self", &lab.Host{Name: "b"}, func(nwid string, argv []string) []string {
		return append([]string{"/bin/ztnc-run", "--home", "H", "--nwid", nwid, "--"}, argv...)
	})
	got := strings.Join(wrap("N", []string{"/usr/bin/iperf3", "-c", "A"}), " ")
	want := `/bin/ztnc-run -v --cpuprofile /p/ztnc-self-b-\d+-iperf3.prof --home H --nwid N -- /usr/bin/iperf3 -c A`
	if !regexp.MustCompile("^" + want + "$").MatchString(got) {
		t.Errorf("wrapped: %s", got)
	}
}

func TestCPUHierarchies(t *testing.T) {
	mounts := `cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
`
	hs := cpuHierarchies(mounts)
	var roots []string
	for _, h := range hs {
		roots = append(roots, h.root)
	}
	if strings.Join(roots, " ") != "/sys/fs/cgroup/unified /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu,cpuacct" {
		t.Fatalf("hierarchies %v", roots)
	}
	for _, tc := range []struct {
		h    *cgroupHierarchy
		in   string
		want float64
	}{
		{hs[0], "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n", 2.5},
		{hs[1], "1500000000\n", 1.5},
	} {
		if got, err := tc.h.seconds([]byte(tc.in)); err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.h.usage, got, err, tc.want)
		}
	}
	if _, err := hs[0].seconds([]byte("nr_periods 0\n")); err == nil {
		t.Errorf("cpu.stat without usage_usec accepted")
	}
}

// TestCPUGroup checks that a program started within a group is accounted to it (needs root
// and a cgroup hierarchy that accounts CPU time).
func TestCPUGroup(t *testing.T) {
	g := newCPUGroup(t, "test-"+t.Name())
	if g == nil {
		t.Skip("no cgroup to account CPU time in")
	}
	before := g.seconds()
	g.within(func() {
		if err := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done").Run(); err != nil {
			t.Fatal(err)
		}
	})
	// Not in the group any more: this CPU time is not the group's.
	if err := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done").Run(); err != nil {
		t.Fatal(err)
	}
	used := g.seconds() - before
	if !(used > 0.02) {
		t.Errorf("group accounted %v s for a busy loop", used)
	}
	if b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs")); err != nil || len(b) != 0 {
		t.Errorf("processes left in the group: %q %v", b, err)
	}
}

// TestVethPair runs every measurement once, for one second, on the veth pair: the runner
// works end to end (the numbers are not checked, only that there are some).
func TestVethPair(t *testing.T) {
	if testing.Short() {
		t.Skip("runs iperf3, nginx and wrk for about 15 s")
	}
	lab.Require(t, "iperf3", "wrk", "nginx", "ping")
	runPair(t, pairs[0], func(st *startup) {
		if st != nil {
			t.Errorf("veth pair measured a startup")
		}
	})
}

// runPair sets pair p up and runs every measurement once for a second, in a CPU account; check
// looks at the startup measured.
func runPair(t *testing.T, p pair, check func(*startup)) {
	cpu := newCPUGroup(t, "test-"+p.name)
	var a, b *lab.Endpoint
	cpu.within(func() {
		var st *startup
		a, b, st = p.setup(t)
		check(st)
	})
	for _, m := range measurements(time.Second) {
		var vals []float64
		var err error
		cpu.within(func() { vals, _, err = m.run(t, a, b, cpu, time.Second) })
		if err != nil {
			t.Errorf("%s: %v", m.rows[0].name, err)
			continue
		}
		if len(vals) != len(m.allRows()) || vals[0] <= 0 {
			t.Errorf("%s: values %v", m.rows[0].name, vals)
			continue
		}
		// Some CPU time per unit of work, or none at all without an account.
		if perUnit := vals[len(vals)-1]; m.cpu != nil && (cpu != nil && !(perUnit > 0) || cpu == nil && !math.IsNaN(perUnit)) {
			t.Errorf("%s: CPU per unit %v (account %v)", m.rows[0].name, perUnit, cpu != nil)
		}
	}
}

func TestFailureNotes(t *testing.T) {
	ms := measurements(time.Second)[:1]
	r := newResults([]pair{{name: "p"}}, ms)
	r.add(0, 0, []float64{1}, "", nil)
	r.add(0, 0, nil, "", fmt.Errorf("first"))
	r.add(0, 0, nil, "", fmt.Errorf("cmd: %s: the reason", strings.Repeat("é", 400)))
	notes := r.failures()
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "p, TCP 1 stream B→A: failed in 2 of 3 runs: cmd: é") ||
		!strings.HasSuffix(notes[0], "é: the reason") || !strings.Contains(notes[0], " … ") || !utf8.ValidString(notes[0]) {
		t.Errorf("notes %q", notes)
	}
	if c := r.cell(0, 0, 0); c.v != 1 || c.n != 1 {
		t.Errorf("cell %+v", c)
	}
}

// TestZtncSelfPair runs the ztnc-self pair end to end for one second per measurement: our
// root and controller, two ztnc-run members, B's starts, and every measurement.
func TestZtncSelfPair(t *testing.T) {
	if testing.Short() {
		t.Skip("runs our root, controller and members with iperf3, nginx and wrk for about a minute")
	}
	lab.Require(t, "iperf3", "wrk", "nginx", "ping", "curl", "busybox")
	bin, err := lab.BuildZtncRun(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func(path string, n int) { *ztncRun, startupRuns = path, n }(*ztncRun, startupRuns)
	*ztncRun, startupRuns = bin, 1
	i := slices.IndexFunc(pairs, func(p pair) bool { return p.name == "ztnc-self" })
	runPair(t, pairs[i], func(st *startup) {
		if st == nil || len(st.toOK) != 1 || len(st.cachedToFirstByte) != 1 || st.toFirstByte[0] < st.toOK[0] {
			t.Errorf("startup %+v", st)
		}
	})
}
