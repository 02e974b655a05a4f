package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// These tests (parallel to each other: each has its own root, controller and network; most
// of their time is spent waiting) run a ZeroTier network hosted by our own binaries on loopback: `ztnc-run root`,
// `ztnc-run controller` (driven through its HTTP API like a user would with curl) and members
// that are `ztnc-run --nwid` processes with homes of their own. Identities come from the lab's
// pre-generated set, so no test waits for the identity proof of work (except where identity
// creation is what is tested).

// netSubnet is the IPv4 pool and route of the test networks (a documentation range: should
// a member's program send to it while its network is down, the traffic goes to the host's
// network); RFC 4193 IPv6 is on too.
var netSubnet = netip.MustParsePrefix("203.0.113.0/24")

// exitFailure is ztnc-run's exit status for its own failures.
const exitFailure = 125

// memberStartTimeout bounds the time from a member's start to its network being OK.
const memberStartTimeout = 30 * time.Second

// proc is a ztnc-run process running in the background.
type proc = lab.Child

// startZtnc starts ztnc-run with args in the background; the test's cleanup stops it (SIGTERM,
// which ztnc-run forwards to its program; SIGKILL 10 s later) and logs its output on failure.
func startZtnc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return lab.StartChild(t, name, lab.Spec{Argv: append([]string{ztncRun}, args...)})
}

// selfHosted is our root and our controller, each a ztnc-run process on loopback.
type selfHosted struct {
	planet  string // the root's planet file
	api     string // the controller's API, http://127.0.0.1:N
	token   string
	ctlAddr string
	ctl     *proc
}

func startSelfHosted(t *testing.T) *selfHosted {
	t.Helper()
	need(t)
	rootHome, ctlHome := homeWith(t, lab.Identity(5)), homeWith(t, lab.Identity(6))
	rootPort := lab.FreePort(t)
	root := startZtnc(t, "root", "root", "--home", rootHome, "--bind", "127.0.0.1", "--port", strconv.Itoa(rootPort))
	root.WaitOutput(t, "root serving", 30*time.Second, func(_, stderr string) bool { return strings.Contains(stderr, "root serving") })
	s := &selfHosted{planet: filepath.Join(rootHome, "planet")}

	ctlPort := lab.FreePort(t)
	s.ctl = startZtnc(t, "controller", "controller", "--home", ctlHome, "--bind", "127.0.0.1",
		"--port", strconv.Itoa(ctlPort), "--planet", s.planet)
	s.ctl.WaitOutput(t, "API line", 30*time.Second, func(stdout, stderr string) bool {
		return strings.Contains(stdout+stderr, "API http://")
	})
	s.api = "http://127.0.0.1:" + strconv.Itoa(ctlPort)
	s.ctlAddr = addressOf(t, ctlHome)
	tok, err := os.ReadFile(filepath.Join(ctlHome, "authtoken.secret"))
	if err != nil {
		t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(tok))
	return s
}

// homeWith returns a new home directory holding identity (secret form).
func homeWith(t *testing.T, identity string) string {
	t.Helper()
	h := lab.NewHome(t)
	h.SetIdentity(t, identity)
	return h.Dir
}

// addressOf is the ZeroTier address of the identity in home.
func addressOf(t *testing.T, home string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, "identity.public"))
	if err != nil {
		t.Fatal(err)
	}
	addr, _, _ := strings.Cut(string(b), ":")
	return addr
}

// call does one controller API call and decodes the JSON answer into out (if not nil).
func (s *selfHosted) call(t *testing.T, method, path string, body any, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.api+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-ZT1-Auth", s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// createNetwork creates a private network assigning IPv4 from netSubnet and RFC 4193 IPv6.
func (s *selfHosted) createNetwork(t *testing.T) string {
	t.Helper()
	spec := map[string]any{
		"name": "ztnc-test", "private": true,
		"v4AssignMode":      map[string]bool{"zt": true},
		"v6AssignMode":      map[string]bool{"rfc4193": true},
		"routes":            []map[string]any{{"target": netSubnet.String()}},
		"ipAssignmentPools": []map[string]string{{"ipRangeStart": "203.0.113.1", "ipRangeEnd": "203.0.113.254"}},
	}
	var nw struct {
		ID string `json:"id"`
	}
	s.call(t, "POST", "/controller/network/"+s.ctlAddr+"______", spec, &nw)
	if len(nw.ID) != 16 || !strings.HasPrefix(nw.ID, s.ctlAddr) {
		t.Fatalf("created network %q", nw.ID)
	}
	return nw.ID
}

type memberRecord struct {
	Address       string   `json:"address"`
	Authorized    bool     `json:"authorized"`
	IPAssignments []string `json:"ipAssignments"`
}

func (s *selfHosted) setAuthorized(t *testing.T, nwid, addr string, auth bool) {
	t.Helper()
	s.call(t, "POST", "/controller/network/"+nwid+"/member/"+addr, map[string]any{"authorized": auth}, nil)
}

func (s *selfHosted) member(t *testing.T, nwid, addr string) memberRecord {
	t.Helper()
	var m memberRecord
	s.call(t, "GET", "/controller/network/"+nwid+"/member/"+addr, nil, &m)
	return m
}

// memberArgs are the ztnc-run flags that make home a member of nwid with our root.
func (s *selfHosted) memberArgs(nwid, home string, extra ...string) []string {
	return append([]string{"--nwid", nwid, "--home", home, "--planet", s.planet}, extra...)
}

// statusOK matches the status line of a network that came up, with its addresses.
var statusOK = regexp.MustCompile(`msg="network status" .*status=OK .*addresses="?\[([^\]]*)\]`)

// assignedIPv4 reads the IPv4 address from a member's "status=OK" line on stderr.
func assignedIPv4(t *testing.T, stderr string) netip.Addr {
	t.Helper()
	m := statusOK.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no status=OK line with addresses on stderr:\n%s", stderr)
	}
	for _, f := range strings.Fields(m[1]) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr().Is4() {
			return p.Addr()
		}
	}
	t.Fatalf("no IPv4 address in %q", m[0])
	return netip.Addr{}
}

func rfc4193(t *testing.T, nwid, addr string) netip.Addr {
	t.Helper()
	n, err := ztaddr.ParseNetworkID(nwid)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ztaddr.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ztaddr.RFC4193(n, a).Addr()
}

// checkStatusLines checks what a member prints on stderr: its address and the network's
// status, as users read them, and that the address matches what the API reports.
func (s *selfHosted) checkStatusLines(t *testing.T, nwid, home, stderr string) netip.Addr {
	t.Helper()
	addr := addressOf(t, home)
	if !strings.Contains(stderr, "address="+addr) {
		t.Errorf("stderr does not name the node address %s:\n%s", addr, stderr)
	}
	ip := assignedIPv4(t, stderr)
	if !netSubnet.Contains(ip) {
		t.Errorf("assigned %s, not from the pool %s", ip, netSubnet)
	}
	rec := s.member(t, nwid, addr)
	if !rec.Authorized || len(rec.IPAssignments) != 1 || rec.IPAssignments[0] != ip.String() {
		t.Errorf("member %s has %s; the API says %+v", addr, ip, rec)
	}
	if v6 := rfc4193(t, nwid, addr); !strings.Contains(stderr, v6.String()+"/88") {
		t.Errorf("stderr lacks the RFC 4193 address %s/88:\n%s", v6, stderr)
	}
	return ip
}

// TestZeroTierCurlHTTPServer: python3 http.server under one member, curl under another, over
// IPv4 and RFC 4193 IPv6; both members print their address and status on stderr and get the
// addresses the API reports.
func TestZeroTierCurlHTTPServer(t *testing.T) {
	t.Parallel()
	need(t, "curl", "python3")
	s := startSelfHosted(t)
	nwid := s.createNetwork(t)
	homeA, homeB := homeWith(t, lab.Identity(2)), homeWith(t, lab.Identity(3))
	s.setAuthorized(t, nwid, addressOf(t, homeA), true)
	s.setAuthorized(t, nwid, addressOf(t, homeB), true)

	dir := webRoot(t)
	server := startZtnc(t, "server", s.memberArgs(nwid, homeA, "--", "python3", "-m", "http.server", "8000",
		"--bind", "::", "--directory", dir)...)
	server.WaitOutput(t, "network OK", memberStartTimeout, func(_, stderr string) bool { return statusOK.MatchString(stderr) })
	ipA := s.checkStatusLines(t, nwid, homeA, server.Stderr.String())
	v6A := rfc4193(t, nwid, addressOf(t, homeA))

	// One node per home: a second ztnc-run on the server's home refuses to start.
	if r := ztnc(t, time.Minute, s.memberArgs(nwid, homeA, "--", "true")...); r.Code != exitFailure ||
		!strings.Contains(r.Stderr, "is in use by another ztnc-run") {
		t.Errorf("second ztnc-run on a home in use: %s", r)
	}

	r := ztnc(t, 2*time.Minute, s.memberArgs(nwid, homeB, "--", "sh", "-c", retry+`
retry curl -sf -o /dev/null http://`+ipA.String()+`:8000/
curl -sSf http://`+ipA.String()+`:8000/index.html
curl -sSf -g 'http://[`+v6A.String()+`]:8000/index.html' | sed 's/^/v6: /'
`)...)
	if r.Code != 0 {
		t.Fatalf("client: %s", r)
	}
	mustContain(t, r, "hello from the virtual network\n", "v6: hello from the virtual network\n")
	if strings.Count(r.Stdout, "\n") != 2 {
		t.Errorf("stdout holds more than the program's output:\n%s", r.Stdout)
	}
	ipB := s.checkStatusLines(t, nwid, homeB, r.Stderr)
	if ipA == ipB {
		t.Fatalf("both members got %s", ipA)
	}
	// The server saw the client's addresses (its request log is on its stderr).
	server.WaitOutput(t, "request log lines", 10*time.Second, func(_, stderr string) bool {
		return strings.Contains(stderr, ipB.String()) && strings.Contains(stderr, rfc4193(t, nwid, addressOf(t, homeB)).String())
	})
}

// TestZeroTierStaticGo: a Go server and client built with CGO_ENABLED=0 under two members:
// echo, both ends' view of the addresses, and 16 MiB checked end to end.
func TestZeroTierStaticGo(t *testing.T) {
	t.Parallel()
	s := startSelfHosted(t)
	nwid := s.createNetwork(t)
	homeA, homeB := homeWith(t, lab.Identity(2)), homeWith(t, lab.Identity(3))
	s.setAuthorized(t, nwid, addressOf(t, homeA), true)
	s.setAuthorized(t, nwid, addressOf(t, homeB), true)

	server := startZtnc(t, "server", s.memberArgs(nwid, homeA, "--", tcpprog, "serve", ":7000")...)
	server.WaitOutput(t, "network OK", memberStartTimeout, func(_, stderr string) bool { return statusOK.MatchString(stderr) })
	a := netip.AddrPortFrom(assignedIPv4(t, server.Stderr.String()), 7000).String()
	a6 := netip.AddrPortFrom(rfc4193(t, nwid, addressOf(t, homeA)), 7000).String()
	r := ztnc(t, 2*time.Minute, s.memberArgs(nwid, homeB, "--", "sh", "-c", "set -e\n"+retry+`
retry `+tcpprog+` echo `+a+` up >/dev/null
`+tcpprog+` echo `+a+` ping
`+tcpprog+` names `+a+`
`+tcpprog+` names '`+a6+`'
`+tcpprog+` bulk `+a+` 16777216
`)...)
	if r.Code != 0 {
		t.Fatalf("client: %s", r)
	}
	mustContain(t, r, "ping\n", "remote "+a+";", "remote "+a6+";")
	got := regexp.MustCompile(`received sha256 ([0-9a-f]{64})`).FindStringSubmatch(r.Stdout)
	server.WaitOutput(t, "the sender's sha256", 10*time.Second, func(_, stderr string) bool {
		return strings.Contains(stderr, "sent sha256")
	})
	sent := regexp.MustCompile(`sent sha256 ([0-9a-f]{64})`).FindStringSubmatch(server.Stderr.String())
	if got == nil || sent == nil || got[1] != sent[1] {
		t.Fatalf("sha256 mismatch or missing: sent %v, received %v\n%s", sent, got, r)
	}
	t.Log(regexp.MustCompile(`bytes .*`).FindString(r.Stdout))
}

// TestZeroTierNotAuthorized: a node the controller has not authorized waits (--wait) and then
// exits 125 with the one line users need; with --wait 0 its program runs but reaches nobody.
func TestZeroTierNotAuthorized(t *testing.T) {
	t.Parallel()
	s := startSelfHosted(t)
	nwid := s.createNetwork(t)
	homeA, homeC := homeWith(t, lab.Identity(2)), homeWith(t, lab.Identity(4))
	s.setAuthorized(t, nwid, addressOf(t, homeA), true)
	server := startZtnc(t, "server", s.memberArgs(nwid, homeA, "--", tcpprog, "serve", ":7000")...)
	server.WaitOutput(t, "network OK", memberStartTimeout, func(_, stderr string) bool { return statusOK.MatchString(stderr) })
	a := netip.AddrPortFrom(assignedIPv4(t, server.Stderr.String()), 7000).String()

	addrC := addressOf(t, homeC)
	start := time.Now()
	r := ztnc(t, time.Minute, s.memberArgs(nwid, homeC, "--wait", "5s", "--", "true")...)
	want := fmt.Sprintf("ztnc-run: ACCESS_DENIED: authorize %s on network %s\n", addrC, nwid)
	if r.Code != exitFailure || !strings.HasSuffix(r.Stderr, want) || r.Stdout != "" {
		t.Fatalf("want exit 125 and last line %q\n%s", want, r)
	}
	if d := time.Since(start); d < 5*time.Second {
		t.Errorf("gave up after %v, before --wait 5s", d)
	}
	if !regexp.MustCompile(`msg="network status" .*status=ACCESS_DENIED hint="authorize ` + addrC).MatchString(r.Stderr) {
		t.Errorf("no ACCESS_DENIED status line on stderr:\n%s", r.Stderr)
	}
	// The controller lists it, unauthorized, for an administrator to authorize.
	if rec := s.member(t, nwid, addrC); rec.Authorized || len(rec.IPAssignments) != 0 {
		t.Errorf("the API reports the refused node as %+v", rec)
	}

	// Started at once, its program finds no network: the node has no config, so nothing it
	// sends leaves it, and the member's server is out of reach. (--isolate: without a route
	// of the network, its addresses would be the host's business, as with zerotier-one, and
	// the connect would leave through the host's default route.)
	r = ztnc(t, time.Minute, s.memberArgs(nwid, homeC, "--wait", "0", "--isolate", "--", "sh", "-c",
		"timeout 5 "+tcpprog+" echo "+a+" hello && echo REACHED")...)
	if r.Code == 0 || strings.Contains(r.Stdout, "REACHED") {
		t.Fatalf("a node that is not a member reached %s\n%s", a, r)
	}
	t.Logf("non-member's attempt: exit %d, %s", r.Code, strings.TrimSpace(lastLine(r.Stderr)))
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// TestZeroTierDeauthorized: a member deauthorized through the API is cut off: the controller
// revokes its certificate of membership at the other members, which drop its frames (and count
// them), so its new connections fail well within a config refresh (60 s), and the member
// itself learns that it is denied.
func TestZeroTierDeauthorized(t *testing.T) {
	t.Parallel()
	need(t, "timeout")
	s := startSelfHosted(t)
	nwid := s.createNetwork(t)
	homeA, homeB := homeWith(t, lab.Identity(2)), homeWith(t, lab.Identity(3))
	addrB := addressOf(t, homeB)
	s.setAuthorized(t, nwid, addressOf(t, homeA), true)
	s.setAuthorized(t, nwid, addrB, true)

	// -v: the server logs revocations, frames it refuses, and its counters at exit.
	server := startZtnc(t, "server", s.memberArgs(nwid, homeA, "-v", "--", tcpprog, "serve", ":7000")...)
	server.WaitOutput(t, "network OK", memberStartTimeout, func(_, stderr string) bool { return statusOK.MatchString(stderr) })
	a := netip.AddrPortFrom(assignedIPv4(t, server.Stderr.String()), 7000).String()

	// The client connects every 0.2 s and prints ok or fail for each attempt. --isolate: once
	// its network is denied, the server's address is outside every route it has, and would
	// be the host's business.
	client := startZtnc(t, "client", s.memberArgs(nwid, homeB, "--isolate", "--", "sh", "-c", `while :; do
	if timeout 5 `+tcpprog+` echo `+a+` x >/dev/null 2>&1; then echo ok; else echo fail; fi
	sleep 0.2
done`)...)
	client.WaitOutput(t, "3 successful connections", memberStartTimeout, func(stdout, _ string) bool {
		return strings.Count(stdout, "ok\n") >= 3
	})

	s.setAuthorized(t, nwid, addrB, false)
	cut := time.Now()
	mark := len(client.Stdout.String())
	const refresh = 60 * time.Second
	client.WaitOutput(t, "a failed connection", refresh, func(stdout, _ string) bool {
		return strings.Contains(stdout[mark:], "fail\n")
	})
	t.Logf("deauthorized member's first failed connection %v after the API call", time.Since(cut).Round(time.Millisecond))
	client.WaitOutput(t, "3 failed connections in a row", refresh, func(stdout, _ string) bool {
		return strings.HasSuffix(stdout[mark:], "fail\nfail\nfail\n")
	})
	if after := client.Stdout.String()[mark:]; strings.Contains(after[strings.Index(after, "fail\nfail\nfail\n"):], "ok") {
		t.Fatalf("connections succeeded again after the cut:\n%s", after)
	}
	client.WaitOutput(t, "ACCESS_DENIED status line", refresh+15*time.Second, func(_, stderr string) bool {
		return strings.Contains(stderr, "status=ACCESS_DENIED")
	})
	client.Stop()

	server.Stop()
	out := server.Stderr.String()
	revoked := strings.Index(out, `msg="membership revoked" `)
	if revoked < 0 || !strings.Contains(out[revoked:], "member="+addrB) {
		t.Fatalf("the server logged no revocation of %s:\n%s", addrB, out)
	}
	if !strings.Contains(out[revoked:], `msg="frame from a peer without valid membership" `) ||
		!strings.Contains(out[revoked:], "peer="+addrB) {
		t.Errorf("the server logged no refused frame from %s after the revocation", addrB)
	}
	m := regexp.MustCompile(`msg="network counters" nwid=` + nwid + ` counters=".*not-member:(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no not-member drops in the server's counters:\n%s", lastLine(out))
	}
	if n, _ := strconv.Atoi(m[1]); n < 3 {
		t.Errorf("the server dropped %d frames of non-members, want several", n)
	}
	t.Logf("server: %s", regexp.MustCompile(`msg="network counters".*`).FindString(out))
}

// TestZeroTierRestart: a member's first run creates its identity (identity.secret mode 0600),
// later runs reuse it and get the same address; with the controller gone, the cached config
// brings the network up all the same.
func TestZeroTierRestart(t *testing.T) {
	t.Parallel()
	s := startSelfHosted(t)
	nwid := s.createNetwork(t)
	home := t.TempDir()

	// First run: the address exists only once ztnc-run has made the identity; authorize it then.
	first := startZtnc(t, "first run", s.memberArgs(nwid, home, "--", "true")...)
	first.WaitOutput(t, "ACCESS_DENIED", memberStartTimeout, func(_, stderr string) bool {
		return strings.Contains(stderr, "status=ACCESS_DENIED")
	})
	addr := addressOf(t, home)
	if !strings.Contains(first.Stderr.String(), "address="+addr) || !strings.Contains(first.Stderr.String(), "new_identity=true") {
		t.Errorf("first run does not report a new identity %s:\n%s", addr, first.Stderr.String())
	}
	fi, err := os.Stat(filepath.Join(home, "identity.secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("identity.secret: %v, %v; want mode 0600", fi.Mode(), err)
	}
	s.setAuthorized(t, nwid, addr, true)
	if code := first.Wait(t, memberStartTimeout); code != 0 {
		t.Fatalf("first run: exit %d\n%s", code, first.Stderr.String())
	}
	ip := s.checkStatusLines(t, nwid, home, first.Stderr.String())

	r := ztnc(t, time.Minute, s.memberArgs(nwid, home, "--", "true")...)
	if r.Code != 0 {
		t.Fatalf("second run: %s", r)
	}
	if addressOf(t, home) != addr || !strings.Contains(r.Stderr, "address="+addr) || strings.Contains(r.Stderr, "new_identity=true") {
		t.Errorf("second run is not %s:\n%s", addr, r.Stderr)
	}
	if got := s.checkStatusLines(t, nwid, home, r.Stderr); got != ip {
		t.Errorf("second run got %s, first %s", got, ip)
	}

	// The controller stops: the config cached in networks.d still brings the network up.
	s.ctl.Stop()
	r = ztnc(t, time.Minute, s.memberArgs(nwid, home, "--wait", "10s", "--", "true")...)
	if r.Code != 0 {
		t.Fatalf("run without the controller: %s", r)
	}
	if got := assignedIPv4(t, r.Stderr); got != ip {
		t.Errorf("run without the controller got %s, want %s", got, ip)
	}
}
