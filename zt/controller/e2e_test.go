package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// An in-process ZeroTier network on 127.0.0.1 made of real nodes talking UDP: a root, a node
// running this controller, and members, each with its own home.

type e2eLab struct {
	t      *testing.T
	ids    []*identity.Identity
	planet []byte
	ctl    *Controller
	ctlID  *identity.Identity
	apiURL string
}

func e2eLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("ZT_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t testing.TB) int {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startNode starts a node with identity id on 127.0.0.1.
func startNode(t testing.TB, id *identity.Identity, cfg zt.Config) *zt.Node {
	t.Helper()
	if cfg.Home == "" {
		cfg.Home = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(cfg.Home, "identity.secret"), []byte(id.SecretString()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Bind = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	cfg.AllowLoopback = true
	cfg.Logger = e2eLogger(t)
	if cfg.Port == 0 {
		cfg.Port = zt.PortAny
	}
	n, err := zt.NewNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// newE2ELab starts a root (identity 4) and a controller node (identity 0) with its API.
func newE2ELab(t *testing.T) *e2eLab {
	if testing.Short() {
		t.Skip("runs real nodes")
	}
	l := &e2eLab{t: t, ids: identities(t)}
	port := freeUDPPort(t)
	root := startNode(t, l.ids[4], zt.Config{Port: port,
		RootEndpoints: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))}})
	root.Start()
	l.planet = root.Planet()

	node := startNode(t, l.ids[0], zt.Config{Planet: l.planet})
	ctl, err := New(Config{Home: t.TempDir(), Identity: node.Identity(), Sender: node, Logger: e2eLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	node.SetConfigMaster(ctl)
	node.Start()
	srv := httptest.NewServer(ctl.Handler(testToken))
	t.Cleanup(srv.Close)
	l.ctl, l.ctlID, l.apiURL = ctl, node.Identity(), srv.URL
	return l
}

// member starts a node with identity i (in home and on port, if given) and joins nwid.
func (l *e2eLab) member(i int, nwid ztaddr.NetworkID, home string, port int) (*zt.Node, *zt.Network) {
	n := startNode(l.t, l.ids[i], zt.Config{Planet: l.planet, Home: home, Port: port})
	n.Start()
	nw, err := n.Join(nwid)
	if err != nil {
		l.t.Fatal(err)
	}
	return n, nw
}

// call uses the API as a client would, with net/http.
func (l *e2eLab) call(method, path string, body any, out any) {
	l.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, l.apiURL+path, rd)
	req.Header.Set("X-ZT1-Auth", testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		l.t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			l.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func waitState(t testing.TB, nw *zt.Network, what string, d time.Duration, cond func(zt.NetworkState) bool) zt.NetworkState {
	t.Helper()
	deadline := time.After(d)
	for {
		ch := nw.Notify()
		if st := nw.State(); cond(st) {
			return st
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: timed out; state %+v", what, nw.State())
		}
	}
}

func statusIs(s zt.Status) func(zt.NetworkState) bool {
	return func(st zt.NetworkState) bool { return st.Status == s }
}

// frameLog records the payloads of frames a network delivers.
type frameLog struct {
	mu       sync.Mutex
	payloads []string
}

func logFrames(nw *zt.Network) *frameLog {
	f := &frameLog{}
	nw.SetReceiver(func(_, _ [6]byte, _ uint16, p []byte) {
		f.mu.Lock()
		f.payloads = append(f.payloads, string(p))
		f.mu.Unlock()
	})
	return f
}

func (f *frameLog) has(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.payloads {
		if p == s {
			return true
		}
	}
	return false
}

// sendUntil sends frames from one member to another until one arrives.
func sendUntil(t testing.TB, from, to *zt.Network, log *frameLog, payload string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for i := 0; ; i++ {
		p := fmt.Sprintf("%s #%d", payload, i)
		if err := from.WriteFrame(to.MAC(), from.MAC(), 0x88b5, []byte(p)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if log.has(p) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no frame %q arrived in %v", payload, d)
		}
	}
}

// TestEndToEnd: our controller and two of our nodes. A is denied until authorized through the
// API, B is authorized before it joins; both get the addresses the API reports and exchange
// frames; a network change is pushed to both; deauthorizing A makes B drop A's frames at once
// (revocation) and A is denied when it asks again.
func TestEndToEnd(t *testing.T) {
	l := newE2ELab(t)
	var nw struct {
		ID string `json:"id"`
	}
	l.call("POST", "/controller/network/"+l.ctlID.Address().String()+"______", map[string]any{
		"name": "e2e", "v4AssignMode": map[string]bool{"zt": true}, "v6AssignMode": map[string]bool{"rfc4193": true},
		"ipAssignmentPools": []map[string]string{{"ipRangeStart": "198.51.100.10", "ipRangeEnd": "198.51.100.250"}},
		"routes":            []map[string]any{{"target": "198.51.100.0/24"}},
	}, &nw)
	nwid, err := ztaddr.ParseNetworkID(nw.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, b := l.ids[1], l.ids[2]
	memberPath := func(id *identity.Identity) string {
		return "/controller/network/" + nw.ID + "/member/" + id.Address().String()
	}
	l.call("POST", memberPath(b), map[string]any{"authorized": true}, nil)

	homeA := t.TempDir()
	nodeA, nwA := l.member(1, nwid, homeA, 0)
	_, nwB := l.member(2, nwid, "", 0)
	waitState(t, nwA, "A denied", 20*time.Second, statusIs(zt.StatusAccessDenied))
	l.call("POST", memberPath(a), map[string]any{"authorized": true}, nil)

	type memberJSON struct {
		IPAssignments []string `json:"ipAssignments"`
		Authorized    bool     `json:"authorized"`
	}
	for _, m := range []struct {
		id *identity.Identity
		nw *zt.Network
	}{{a, nwA}, {b, nwB}} {
		st := waitState(t, m.nw, m.id.Address().String()+" configured", 20*time.Second, statusIs(zt.StatusOK))
		var rec memberJSON
		l.call("GET", memberPath(m.id), nil, &rec)
		want := []string{ztaddr.RFC4193(nwid, m.id.Address()).String()}
		for _, ip := range rec.IPAssignments {
			want = append(want, ip+"/24")
		}
		got := fmt.Sprint(st.Addresses)
		if len(rec.IPAssignments) != 1 || got != fmt.Sprint(want) || st.Name != "e2e" {
			t.Errorf("%s: addresses %v, API says %v; name %q", m.id.Address(), got, want, st.Name)
		}
	}

	logA, logB := logFrames(nwA), logFrames(nwB)
	sendUntil(t, nwA, nwB, logB, "A to B", 15*time.Second)
	sendUntil(t, nwB, nwA, logA, "B to A", 15*time.Second)

	l.call("POST", "/controller/network/"+nw.ID, map[string]any{"name": "renamed"}, nil)
	for _, n := range []*zt.Network{nwA, nwB} {
		waitState(t, n, "push", 10*time.Second, func(st zt.NetworkState) bool { return st.Name == "renamed" })
	}

	l.call("POST", memberPath(a), map[string]any{"authorized": false}, nil)
	waitFor(t, "B drops A's frames", 10*time.Second, func() bool {
		p := fmt.Sprintf("after deauth %d", time.Now().UnixNano())
		nwA.WriteFrame(nwB.MAC(), nwA.MAC(), 0x88b5, []byte(p))
		time.Sleep(200 * time.Millisecond)
		return !logB.has(p)
	})
	for range 5 {
		p := fmt.Sprintf("after deauth, again %d", time.Now().UnixNano())
		nwA.WriteFrame(nwB.MAC(), nwA.MAC(), 0x88b5, []byte(p))
		time.Sleep(100 * time.Millisecond)
		if logB.has(p) {
			t.Fatal("B accepted a frame from deauthorized A")
		}
	}
	if l.ctl.Stats().Revocations == 0 {
		t.Error("no revocation sent")
	}
	// A's next request is denied (restarted here, so as not to wait for its refresh; after a
	// second, or the controller would ignore the request as too soon after the last).
	// Its cached config is removed: a node applying it would show OK until its next refresh.
	portA := nodeA.Port()
	nodeA.Close()
	if err := os.Remove(filepath.Join(homeA, "networks.d", nw.ID+".conf")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(minRequestInterval * time.Millisecond)
	_, nwA2 := l.member(1, nwid, homeA, portA)
	waitState(t, nwA2, "A denied after deauthorization", 20*time.Second, statusIs(zt.StatusAccessDenied))
	if !strings.Contains(fmt.Sprint(nwB.State().Status), "OK") {
		t.Errorf("B: %v", nwB.State().Status)
	}
}

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
