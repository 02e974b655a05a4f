package host

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

type healthJSON struct {
	OK       bool     `json:"ok"`
	Reasons  []string `json:"reasons"`
	Networks []struct {
		NWID              string   `json:"nwid"`
		Status            string   `json:"status"`
		AssignedAddresses []string `json:"assignedAddresses"`
	} `json:"networks"`
}

func getHealth(url string) (int, healthJSON, error) {
	var h healthJSON
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		return 0, h, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return 0, h, fmt.Errorf("content type %q", ct)
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	return resp.StatusCode, h, err
}

// TestHealthz: /healthz answers 503 with the reason while the member is not authorized (the
// program not started yet), then 200 once the network is OK with an address; /metrics parses
// as Prometheus text and its counters follow the traffic of the program, which a second
// member fetches a file from over the network.
func TestHealthz(t *testing.T) {
	need(t, "python3", "curl")
	s := startSelfHosted(t)
	nwid := s.network(t, "health")
	home, flags := s.member(t, 3)
	port := lab.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	srvDir := t.TempDir()
	m := ztnc(t, "member", nil, append(flags, "--nwid", nwid, "--health", fmt.Sprintf("127.0.0.1:%d", port), "--",
		"python3", "-m", "http.server", "-d", srvDir, "8080")...)

	want := "ACCESS_DENIED: authorize " + home.Address() + " on network " + nwid
	waitFor(t, m, "503 naming the reason", 30*time.Second, func() error {
		code, h, err := getHealth(url)
		if err != nil {
			return err
		}
		if code != http.StatusServiceUnavailable || h.OK || len(h.Reasons) != 1 || h.Reasons[0] != want ||
			len(h.Networks) != 1 || h.Networks[0].Status != "ACCESS_DENIED" {
			return fmt.Errorf("%d %+v", code, h)
		}
		return nil
	})
	metrics := scrape(t, url)
	if v := metrics.value(t, `ztnc_network_ready{nwid="`+nwid+`"}`); v != 0 {
		t.Errorf("ztnc_network_ready before authorization: %v", v)
	}
	if v := metrics.value(t, "ztnc_programs"); v != 0 {
		t.Errorf("ztnc_programs before the program started: %v", v)
	}

	addr := netip.MustParseAddr("203.0.113.60")
	if err := s.ctl.Authorize(t.Context(), nwid, home.Address(), addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, "200", 30*time.Second, func() error {
		code, h, err := getHealth(url)
		if err != nil {
			return err
		}
		if code != http.StatusOK || !h.OK || len(h.Reasons) != 0 || h.Networks[0].Status != "OK" || h.Networks[0].AssignedAddresses[0] != "203.0.113.60/24" {
			return fmt.Errorf("%d %+v", code, h)
		}
		return nil
	})

	// A second member fetches from the program across the network.
	home2, flags2 := s.member(t, 4)
	if err := s.ctl.Authorize(t.Context(), nwid, home2.Address(), netip.MustParseAddr("203.0.113.61")); err != nil {
		t.Fatal(err)
	}
	r := runZtnc(t, 90*time.Second, nil, append(flags2, "--nwid", nwid, "--", "sh", "-c",
		`i=0; until curl -fsS -o /dev/null http://203.0.113.60:8080/; do i=$((i+1)); [ $i -lt 100 ] || exit 3; sleep 0.1; done`)...)
	if r.Code != 0 {
		t.Fatalf("fetch from the second member: %s", r)
	}

	metrics = scrape(t, url)
	for _, name := range []string{
		`ztnc_network_ready{nwid="` + nwid + `"}`,
		`ztnc_node_online{address="` + home.Address() + `"}`,
		"ztnc_programs",
	} {
		if v := metrics.value(t, name); v != 1 {
			t.Errorf("%s = %v, want 1", name, v)
		}
	}
	for _, name := range []string{
		`ztnc_network_frames_total{nwid="` + nwid + `",direction="in"}`,
		`ztnc_network_frames_total{nwid="` + nwid + `",direction="out"}`,
		`ztnc_stack_bytes_total{nwid="` + nwid + `",direction="in"}`,
		`ztnc_node_packets_total{direction="in"}`,
		`ztnc_node_bytes_total{direction="out"}`,
		`ztnc_trapped_calls_total{call="accept4"}`,
		"ztnc_connections_total",
		"ztnc_notify_handling_seconds_count",
	} {
		if v := metrics.value(t, name); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if _, ok := metrics.samples[`ztnc_stack_drops_total{nwid="`+nwid+`",reason="queue-full"}`]; !ok {
		t.Errorf("no stack drop counter by reason")
	}
	if _, ok := metrics.samples[`ztnc_stack_delayed_acks_total{nwid="`+nwid+`",outcome="expired"}`]; !ok {
		t.Errorf("no delayed-ACK counter by outcome")
	}
	if _, ok := metrics.samples[`ztnc_stack_parked_loops{nwid="`+nwid+`"}`]; !ok {
		t.Errorf("no parked-loops gauge")
	}
}

// promMetrics is a scraped Prometheus text exposition.
type promMetrics struct {
	samples map[string]float64 // by name{labels} as written
	types   map[string]string
}

func (m promMetrics) value(t *testing.T, key string) float64 {
	t.Helper()
	v, ok := m.samples[key]
	if !ok {
		t.Errorf("no sample %s", key)
		return math.NaN()
	}
	return v
}

var (
	promSample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})? (\S+)$`)
	promHelp   = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$`)
	promType   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$`)
)

// scrape fetches /metrics and parses it strictly: every line is a HELP, a TYPE or a sample of
// a declared family; counters are not negative; histogram buckets are cumulative and end
// with +Inf equal to _count.
func scrape(t *testing.T, url string) promMetrics {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics content type %q", ct)
	}
	body, _ := io.ReadAll(resp.Body)
	m := promMetrics{samples: map[string]float64{}, types: map[string]string{}}
	var family string
	var lastBucket float64
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if g := promHelp.FindStringSubmatch(line); g != nil {
			family = g[1]
			continue
		}
		if g := promType.FindStringSubmatch(line); g != nil {
			if g[1] != family {
				t.Fatalf("TYPE %s after HELP %s", g[1], family)
			}
			if _, dup := m.types[family]; dup {
				t.Fatalf("family %s declared twice", family)
			}
			m.types[family] = g[2]
			lastBucket = 0
			continue
		}
		g := promSample.FindStringSubmatch(line)
		if g == nil {
			t.Fatalf("malformed /metrics line %q", line)
		}
		name := g[1]
		base := name
		if m.types[family] == "histogram" {
			base = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		}
		if base != family {
			t.Fatalf("sample %s in family %s", name, family)
		}
		v, err := strconv.ParseFloat(g[3], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		if m.types[family] == "counter" && v < 0 {
			t.Errorf("negative counter: %s", line)
		}
		if strings.HasSuffix(name, "_bucket") {
			if v < lastBucket {
				t.Errorf("histogram %s: buckets not cumulative at %s", family, line)
			}
			lastBucket = v
		}
		key := name + g[2]
		if _, dup := m.samples[key]; dup {
			t.Fatalf("sample %s twice", key)
		}
		m.samples[key] = v
	}
	for fam, typ := range m.types {
		if typ == "histogram" && m.samples[fam+`_bucket{le="+Inf"}`] != m.samples[fam+"_count"] {
			t.Errorf("histogram %s: +Inf bucket %v, count %v", fam, m.samples[fam+`_bucket{le="+Inf"}`], m.samples[fam+"_count"])
		}
	}
	return m
}
