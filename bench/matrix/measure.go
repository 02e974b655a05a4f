package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// row is one line of the report.
type row struct {
	name        string
	unit        string
	lowerBetter bool
}

// measurement runs a client on B against a server on A and yields one value per row.
type measurement struct {
	rows   []row
	server string   // "iperf3", "nginx" or "" (none)
	argv   []string // client command; "{A}" stands for A's address
	// parse reads the client's output: a value per row and a note on anything odd.
	parse func(stdout string) (vals []float64, note string, err error)
	// cpu, if set, adds a last row: the pair's CPU time while the client ran, per unit of
	// work, the work being the first row's rate times the run's length.
	cpu *cpuCost
}

// cpuCost says how CPU time is reported per unit of work.
type cpuCost struct {
	unit  string  // e.g. "CPU-s/GB"
	scale float64 // CPU seconds / (rate × seconds) × scale = the value shown
}

// The units of work: Gbit/s × s = Gbit = GB × 8; req/s × s = requests; datagrams/s × s.
var (
	cpuPerGB         = &cpuCost{unit: "CPU-s/GB", scale: 8}
	cpuPer1kReq      = &cpuCost{unit: "CPU-s/1k req", scale: 1e3}
	cpuPer1MDatagram = &cpuCost{unit: "CPU-s/1M datagrams", scale: 1e6}
)

const (
	iperfPort = 5201
	httpPort  = 8080
)

// measurements returns the benchmark programs for runs of d each.
func measurements(d time.Duration) []measurement {
	secs := strconv.Itoa(int(d.Round(time.Second) / time.Second))
	iperf := func(extra ...string) []string {
		return append([]string{"iperf3", "-c", "{A}", "-p", strconv.Itoa(iperfPort), "-t", secs, "-J"}, extra...)
	}
	url := fmt.Sprintf("http://{A}:%d/index.html", httpPort)
	wrk := func(threads, conns int, extra ...string) []string {
		argv := []string{"wrk", fmt.Sprintf("-t%d", threads), fmt.Sprintf("-c%d", conns), "-d" + secs + "s"}
		return append(append(argv, extra...), url)
	}
	tcp := func(name string, extra ...string) measurement {
		return measurement{rows: []row{{name, "Gbit/s", false}}, server: "iperf3", argv: iperf(extra...),
			parse: parseIperfTCP, cpu: cpuPerGB}
	}
	http := func(name string, argv []string) measurement {
		return measurement{rows: []row{{name, "req/s", false}}, server: "nginx", argv: argv,
			parse: parseWrk, cpu: cpuPer1kReq}
	}
	return []measurement{
		tcp("TCP 1 stream B→A"),
		tcp("TCP 1 stream A→B", "-R"),
		tcp("TCP 4 streams B→A", "-P", "4"),
		tcp("TCP 4 streams A→B", "-P", "4", "-R"),
		{
			rows: []row{
				{"UDP 1400 B B→A received", "datagrams/s", false},
				{"UDP 1400 B B→A loss", "%", true},
			},
			server: "iperf3", argv: iperf("-u", "-l", "1400", "-b", "0"), parse: parseIperfUDP,
			cpu: cpuPer1MDatagram,
		},
		http("HTTP keep-alive -c32", wrk(2, 32)),
		http("HTTP new connection -c1", wrk(1, 1, "-H", "Connection: close")),
		http("HTTP new connection -c32", wrk(2, 32, "-H", "Connection: close")),
		{
			rows: []row{
				{"HTTP after 20 ms idle, kept alive, p50", "ms", true},
				{"HTTP after 20 ms idle, new connection, p50", "ms", true},
			},
			server: "nginx", argv: []string{"python3", "-c", idleScript, "{A}", strconv.Itoa(httpPort)},
			parse: parseIdle,
		},
		{
			rows: []row{
				{"B's node after new connections and 400 curls, RSS", "MB", true},
				{fmt.Sprintf("B's node %d s idle after, RSS", footprintIdle), "MB", true},
				{fmt.Sprintf("B's node %d s idle after, fds beyond before", footprintIdle), "fds", true},
			},
			server: "nginx", argv: []string{"python3", "-c", footprintScript, url, secs, strconv.Itoa(footprintIdle)},
			parse: parseFootprint,
		},
		{
			rows: []row{
				{fmt.Sprintf("B's node holding %d idle keep-alive connections, RSS beyond before", heldConns), "MB", true},
				{"B's node while it opened them and they went idle, peak RSS beyond before", "MB", true},
				{"B's node as they all carry a request at once, peak RSS beyond before", "MB", true},
			},
			server: "nginx", argv: []string{"python3", "-c", heldScript, "{A}", strconv.Itoa(httpPort), strconv.Itoa(heldConns), strconv.Itoa(heldIdle)},
			parse: parseHeld,
		},
		{
			rows:  []row{{fmt.Sprintf("ping RTT avg (after %d)", pingWarmup), "ms", true}, {"ping RTT p50", "ms", true}},
			argv:  []string{"ping", "-c", "200", "-i", "0.01", "-W", "1", "{A}"},
			parse: parsePing,
		},
	}
}

// allRows are the rows of m, with its CPU row.
func (m measurement) allRows() []row {
	if m.cpu == nil {
		return m.rows
	}
	return append(slices.Clone(m.rows), row{m.rows[0].name + ", CPU", m.cpu.unit, true})
}

// run measures once on a pair: server on a, client on b, the pair's CPU time accounted in
// cpu; d is the client's run length.
func (m measurement) run(t lab.T, a, b *lab.Endpoint, cpu *cpuGroup, d time.Duration) ([]float64, string, error) {
	switch m.server {
	case "iperf3":
		srv := a.Start(t, "iperf3", "-s", "-B", a.Addr.String(), "-p", strconv.Itoa(iperfPort), "--forceflush")
		defer srv.Stop()
		// Not a probe connection: iperf3 takes it for a client, fails that test and re-listens,
		// and the real client may hit the old listener and be reset.
		if err := srv.WaitOutput("Server listening", 30*time.Second); err != nil {
			return nil, "", err
		}
	case "nginx":
		srv := startNginx(t, a)
		defer srv.Stop()
		if err := b.WaitTCP(t, a.Addr, httpPort, 30*time.Second); err != nil {
			return nil, "", err
		}
	case "":
		stop, err := holdNode(t, a)
		if err != nil {
			return nil, "", err
		}
		defer stop()
	}
	argv := m.command(a.Addr.String())
	cpu0 := cpu.seconds()
	out, err := b.Exec(t, argv[0], argv[1:]...)
	cpuUsed := cpu.seconds() - cpu0
	if err != nil {
		return nil, "", err
	}
	vals, note, err := m.parse(out)
	if err != nil || m.cpu == nil {
		return vals, note, err
	}
	perUnit := math.NaN()
	if work := vals[0] * d.Seconds(); work > 0 {
		perUnit = cpuUsed / work * m.cpu.scale
	}
	return append(vals, perUnit), note, nil
}

// holdNode keeps a program running on a when a's node lives in the programs it wraps
// (ztnc-run), so that a answers ping, from ztnc-run's status=OK line on; stop ends it.
func holdNode(t lab.T, a *lab.Endpoint) (stop func(), err error) {
	if a.Wrap == nil {
		return func() {}, nil
	}
	idle := a.Start(t, "sleep", "infinity")
	if err := idle.WaitOutput("status=OK", 30*time.Second); err != nil {
		idle.Stop()
		return nil, err
	}
	return func() { idle.Stop() }, nil
}

// warmUp pings a from b a few times, to warm paths and neighbour caches before measuring.
func warmUp(t lab.T, a, b *lab.Endpoint) error {
	stop, err := holdNode(t, a)
	if err != nil {
		return err
	}
	defer stop()
	_, err = b.Exec(t, "ping", "-c", "3", "-i", "0.2", "-w", "10", a.Addr.String())
	return err
}

// command is the client argv with A's address filled in.
func (m measurement) command(addr string) []string {
	argv := slices.Clone(m.argv)
	for i := range argv {
		argv[i] = strings.ReplaceAll(argv[i], "{A}", addr)
	}
	return argv
}

// nginxConf: two workers (one per core), no logs, keep-alive without limits, every path under
// the run's own directory.
const nginxConf = `daemon off;
master_process on;
worker_processes 2;
user root root;
pid %[1]s/nginx.pid;
error_log stderr warn;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	keepalive_requests 100000000;
	keepalive_timeout 65;
	client_body_temp_path %[1]s/tmp;
	proxy_temp_path %[1]s/tmp;
	fastcgi_temp_path %[1]s/tmp;
	uwsgi_temp_path %[1]s/tmp;
	scgi_temp_path %[1]s/tmp;
	server {
		listen %[2]s:%[3]d;
		root %[1]s/html;
	}
}
`

// indexHTML is a small static page, the size of nginx's own default index.html.
var indexHTML = strings.Repeat("ztnc bench matrix: a small static file served by nginx.\n", 11)

func startNginx(t lab.T, a *lab.Endpoint) *lab.Proc {
	dir := t.TempDir()
	for _, d := range []string{"html", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("%v", err)
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	files := map[string]string{
		conf:                                     fmt.Sprintf(nginxConf, dir, a.Addr, httpPort),
		filepath.Join(dir, "html", "index.html"): indexHTML,
	}
	for name, data := range files {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatalf("%v", err)
		}
	}
	return a.Start(t, "nginx", "-p", dir, "-c", conf, "-e", "stderr")
}

type iperfResult struct {
	End struct {
		SumReceived struct {
			Seconds       float64 `json:"seconds"`
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
			Packets       float64 `json:"packets"`
			LostPackets   float64 `json:"lost_packets"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

func parseIperf(out string) (iperfResult, error) {
	var r iperfResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, fmt.Errorf("iperf3 output: %w", err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.Seconds <= 0 {
		return r, fmt.Errorf("iperf3 output has no received sum")
	}
	return r, nil
}

func parseIperfTCP(out string) ([]float64, string, error) {
	r, err := parseIperf(out)
	return []float64{r.End.SumReceived.BitsPerSecond / 1e9}, "", err
}

// parseIperfUDP yields datagrams received per second and the loss in percent.
func parseIperfUDP(out string) ([]float64, string, error) {
	r, err := parseIperf(out)
	s := r.End.SumReceived
	if err == nil && s.Packets <= 0 {
		err = fmt.Errorf("iperf3: no datagrams sent")
	}
	if err != nil {
		return nil, "", err
	}
	received := s.Packets - s.LostPackets
	return []float64{received / s.Seconds, 100 * s.LostPackets / s.Packets}, "", nil
}

var (
	wrkRate   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkErrors = regexp.MustCompile(`(Socket errors:.*|Non-2xx or 3xx responses: \d+)`)
)

// parseWrk yields requests per second, with wrk's error counts as the note.
func parseWrk(out string) ([]float64, string, error) {
	m := wrkRate.FindStringSubmatch(out)
	if m == nil {
		return nil, "", fmt.Errorf("wrk output has no Requests/sec: %q", out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return []float64{v}, strings.Join(wrkErrors.FindAllString(out, -1), "; "), err
}

var (
	pingTime = regexp.MustCompile(`time=([0-9.]+) ms`)
	pingLoss = regexp.MustCompile(`\d+ packets transmitted, \d+ received, [0-9.]+% packet loss`)
)

// pingWarmup is how many of the first replies the mean leaves out (when there are more than
// twice as many): a ztnc-run started for the ping on B first resolves its path to A, and the
// mean is about the steady state (the median covers all replies).
const pingWarmup = 10

// parsePing yields the mean round-trip time of the echoes answered after the first
// pingWarmup, and the median of all; the note tells the loss, if any.
func parsePing(out string) ([]float64, string, error) {
	var rtts []float64
	for _, m := range pingTime.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return nil, "", err
		}
		rtts = append(rtts, v)
	}
	if len(rtts) == 0 {
		return nil, "", fmt.Errorf("ping: no replies")
	}
	steady := rtts
	if len(rtts) > 2*pingWarmup {
		steady = rtts[pingWarmup:]
	}
	var sum float64
	for _, v := range steady {
		sum += v
	}
	note := pingLoss.FindString(out)
	if strings.Contains(note, " 0% packet loss") {
		note = ""
	}
	return []float64{sum / float64(len(steady)), median(rtts)}, note, nil
}

// idleScript is a client that is mostly idle, as an interactive one is: it fetches A's page
// every 20 ms, 300 times over one kept-alive connection, then 300 times with a connection each,
// and prints each request's latency in ms.
const idleScript = `
import http.client, sys, time
host, port = sys.argv[1], int(sys.argv[2])
c = http.client.HTTPConnection(host, port)
for mode in ("keep-alive", "close"):
    for i in range(300):
        time.sleep(0.02)
        t0 = time.perf_counter()
        if mode == "close":
            c = http.client.HTTPConnection(host, port)
        c.request("GET", "/index.html")
        c.getresponse().read()
        print(mode, "%.3f" % ((time.perf_counter() - t0) * 1e3))
        if mode == "close":
            c.close()
`

var idleLine = regexp.MustCompile(`(?m)^(keep-alive|close) ([0-9.]+)$`)

// parseIdle reads idleScript's latencies: the median of each mode.
func parseIdle(out string) ([]float64, string, error) {
	lat := map[string][]float64{}
	for _, m := range idleLine.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, "", err
		}
		lat[m[1]] = append(lat[m[1]], v)
	}
	if len(lat["keep-alive"]) == 0 || len(lat["close"]) == 0 {
		return nil, "", fmt.Errorf("idle client: no latencies in %q", out)
	}
	return []float64{median(lat["keep-alive"]), median(lat["close"])}, "", nil
}

// footprintIdle is how long the footprint client waits, idle, before its last look (seconds).
const footprintIdle = 30

// nodeLooks is the start of the scripts that look at the memory and file descriptors of the
// process that carries B's ZeroTier node — the ztnc-run it runs under, or the zerotier-one in
// its network namespace: node() finds it, look() prints "WHAT RSS_MB FDS".
const nodeLooks = `
import os, sys
def comm(p): return open("/proc/%d/comm" % p).read().strip()
def node():
    p = os.getppid()
    while p > 1:
        if comm(p).startswith("ztnc-run"): return p  # also a build named ztnc-run.REV
        p = int(open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[1])
    net = os.readlink("/proc/self/ns/net")
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            if comm(int(d)) == "zerotier-one" and os.readlink("/proc/%s/ns/net" % d) == net: return int(d)
        except OSError: pass
def look(what, p):
    rss = [l.split()[1] for l in open("/proc/%d/status" % p) if l.startswith("VmRSS:")][0]
    print(what, int(rss) / 1024, len(os.listdir("/proc/%d/fd" % p)), flush=True)
`

// footprintScript looks at B's node before and after a churn of connections (wrk with a
// connection per request for the run's length, then 400 curl processes, 100 at a time), and
// again after an idle spell: a member must give back what a burst took. Prints "none" on a
// pair without a node (veth).
const footprintScript = nodeLooks + `
import subprocess, time
url, secs, idle = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = node()
if p is None:
    print("none"); sys.exit()
look("before", p)
subprocess.run(["wrk", "-t2", "-c32", "-d" + secs + "s", "-H", "Connection: close", url], check=True, stdout=subprocess.DEVNULL)
for wave in range(4):
    cs = [subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "--max-time", "10", url]) for i in range(100)]
    if any(c.wait() for c in cs): sys.exit("curl failed")
look("churned", p)
time.sleep(idle)
look("idle", p)
`

var footprintLine = regexp.MustCompile(`(?m)^(before|churned|idle) ([0-9.]+) ([0-9]+)$`)

// heldConns connections are held idle for heldIdle seconds by heldScript.
const (
	heldConns = 2000
	heldIdle  = 30
)

// heldScript looks at B's node before and after opening connections to nginx on A, one
// request each, and holding them idle (ztnc-run parks an idle connection's loops after 5-10
// s), with the node's peak RSS meanwhile ("opened"); then all of them carry one more request
// at once (every request is sent before the first response is read), and it prints the
// node's peak RSS meanwhile ("woken"). Prints "none" on a pair without a node (veth).
const heldScript = nodeLooks + `
import http.client, resource, time
host, port, n, idle = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 256)), hard))
p = node()
if p is None:
    print("none"); sys.exit()
def peak(what, p):
    hwm = [l.split()[1] for l in open("/proc/%d/status" % p) if l.startswith("VmHWM:")][0]
    print(what, int(hwm) / 1024, len(cs), flush=True)
    open("/proc/%d/clear_refs" % p, "w").write("5")  # VmHWM starts again from VmRSS
cs = []
look("before", p)
open("/proc/%d/clear_refs" % p, "w").write("5")
for i in range(n):
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", "/index.html")
    c.getresponse().read()
    cs.append(c)
time.sleep(idle)
look("held", p)
peak("opened", p)
for c in cs:
    c.request("GET", "/index.html")
for c in cs:
    r = c.getresponse()
    r.read()
    if r.status != 200: sys.exit("request after the idle spell failed")
peak("woken", p)
for c in cs:
    c.close()
`

var heldLine = regexp.MustCompile(`(?m)^(before|held|opened|woken) ([0-9.]+) [0-9]+$`)

// parseHeld reads heldScript's looks: the RSS the held connections added, the peak while
// they were opened and went idle, and the peak while they all carried a request.
func parseHeld(out string) ([]float64, string, error) {
	if strings.TrimSpace(out) == "none" {
		return []float64{math.NaN(), math.NaN(), math.NaN()}, "", nil
	}
	rss := map[string]float64{}
	for _, m := range heldLine.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, "", err
		}
		rss[m[1]] = v
	}
	if len(rss) != 4 {
		return nil, "", fmt.Errorf("held-connections client: not all four looks in %q", out)
	}
	return []float64{rss["held"] - rss["before"], rss["opened"] - rss["before"], rss["woken"] - rss["before"]}, "", nil
}

// parseFootprint reads footprintScript's looks: RSS after the churn and after the idle spell,
// and the file descriptors open after it beyond those open before.
func parseFootprint(out string) ([]float64, string, error) {
	if strings.TrimSpace(out) == "none" {
		return []float64{math.NaN(), math.NaN(), math.NaN()}, "", nil
	}
	look := map[string][2]float64{}
	for _, m := range footprintLine.FindAllStringSubmatch(out, -1) {
		rss, err1 := strconv.ParseFloat(m[2], 64)
		fds, err2 := strconv.ParseFloat(m[3], 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, "", err
		}
		look[m[1]] = [2]float64{rss, fds}
	}
	if len(look) != 3 {
		return nil, "", fmt.Errorf("footprint client: not three looks in %q", out)
	}
	return []float64{look["churned"][0], look["idle"][0], look["idle"][1] - look["before"][1]}, "", nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
