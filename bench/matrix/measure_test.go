package main

import (
	"fmt"
	"math"
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
		{"iperf3 tcp", parseIperfTCP, tcpOut, []float64{2}, ""},
		{"iperf3 udp", parseIperfUDP, udpOut, []float64{750, 25}, ""},
	} {
		got, note, err := tc.parse(tc.in)
		if err != nil || note != tc.note || len(got) != len(tc.want) {
			t.Errorf("%s: %v %q %v", tc.name, got, note, err)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-9 {
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

// TestVethPair runs every measurement once, for one second, on the veth pair: the runner
// works end to end (the numbers are not checked, only that there are some).
func TestVethPair(t *testing.T) {
	if testing.Short() {
		t.Skip("runs iperf3, nginx and wrk for about 15 s")
	}
	lab.Require(t, "iperf3", "wrk", "nginx", "ping")
	a, b, st := pairs[0].setup(t)
	if st != nil {
		t.Errorf("veth pair measured a startup")
	}
	for _, m := range measurements(time.Second) {
		vals, _, err := m.run(t, a, b)
		if err != nil {
			t.Errorf("%s: %v", m.rows[0].name, err)
			continue
		}
		if len(vals) != len(m.rows) || vals[0] <= 0 {
			t.Errorf("%s: values %v", m.rows[0].name, vals)
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
	a, b, st := pairs[i].setup(t)
	if st == nil || len(st.toOK) != 1 || len(st.cachedToFirstByte) != 1 || st.toFirstByte[0] < st.toOK[0] {
		t.Errorf("startup %+v", st)
	}
	for _, m := range measurements(time.Second) {
		vals, _, err := m.run(t, a, b)
		if err != nil {
			t.Errorf("%s: %v", m.rows[0].name, err)
			continue
		}
		if len(vals) != len(m.rows) || vals[0] <= 0 {
			t.Errorf("%s: values %v", m.rows[0].name, vals)
		}
	}
}
