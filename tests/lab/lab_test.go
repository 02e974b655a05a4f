package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSegment checks addressing, reachability across the three subnets, IPv6 and the MTU.
func TestSegment(t *testing.T) {
	t.Parallel()
	Require(t, "ping")
	l := New(t, Config{MTU: 9000, IPv6: true})
	a := l.AddHost("a", "")
	b := l.AddHost("b", "198.51.100.7")
	c := l.AddHost("c", "203.0.113.9")
	if a.Addr != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("first automatic address = %s, want 192.0.2.1", a.Addr)
	}
	if want := netip.MustParseAddr("2001:db8::c633:6407"); b.Addr6 != want {
		t.Errorf("b.Addr6 = %s, want %s", b.Addr6, want)
	}
	for _, from := range []*Host{a, b, c} {
		for _, to := range []*Host{a, b, c} {
			if from == to {
				continue
			}
			from.Run(t, "ping", "-c1", "-W2", to.Addr.String())
			from.Run(t, "ping", "-6", "-c1", "-W2", to.Addr6.String())
		}
	}
	// A 9000-byte packet with DF set crosses the bridge unfragmented.
	a.Run(t, "ping", "-c1", "-W2", "-M", "do", "-s", fmt.Sprint(9000-28), c.Addr.String())
	if _, err := a.Exec(t, "ping", "-c1", "-W2", "-M", "do", "-s", fmt.Sprint(9001-28), c.Addr.String()); err == nil {
		t.Errorf("a 9001-byte DF packet went through a 9000-byte MTU")
	}
	// Sysctl applies to one namespace only.
	if err := a.Sysctl("net.ipv4.ip_local_port_range", "2000 3000"); err != nil {
		t.Fatal(err)
	}
	if got := a.Run(t, "cat", "/proc/sys/net/ipv4/ip_local_port_range"); got != "2000\t3000\n" {
		t.Errorf("a's port range %q", got)
	}
	if got := b.Run(t, "cat", "/proc/sys/net/ipv4/ip_local_port_range"); got == "2000\t3000\n" {
		t.Errorf("a's sysctl leaked into b")
	}
	if err := a.Sysctl("net.ipv4.no_such_key", "1"); err == nil {
		t.Errorf("Sysctl of a missing key succeeded")
	}
	if got := l.Hosts(); len(got) != 3 || got[2] != c {
		t.Errorf("Hosts() = %v", got)
	}
}

func TestAddHostRejectsBadInput(t *testing.T) {
	t.Parallel()
	f := &fatalRecorder{T: t}
	l := New(f, Config{})
	l.AddHost("a", "192.0.2.5")
	for _, tc := range []struct{ name, addr string }{
		{"a", ""},               // duplicate name
		{"b", "192.0.2.5"},      // address taken
		{"c", "10.0.0.1"},       // not a documentation range
		{"d", "192.0.2.255"},    // broadcast
		{"e", "198.51.100.0"},   // network address
		{"f/g", ""},             // bad name
		{"h", "2001:db8::1"},    // IPv4 only
		{"i", "not an address"}, // garbage
	} {
		f.msg = ""
		runAndRecover(func() { l.AddHost(tc.name, tc.addr) }, f)
		if f.msg == "" {
			t.Errorf("AddHost(%q, %q) succeeded", tc.name, tc.addr)
		}
	}
}

// TestProcesses runs a server and a client, waits for ports, reads output and stops cleanly.
func TestProcesses(t *testing.T) {
	t.Parallel()
	Require(t, "busybox", "python3")
	l := New(t, Config{})
	srv, cli := l.AddHost("srv", ""), l.AddHost("cli", "")

	dir := t.TempDir()
	const body = "lab says hello\n"
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	httpd := srv.Start(t, "busybox", "httpd", "-f", "-v", "-p", HostPort(srv.Addr, 8080), "-h", dir)
	if err := cli.WaitTCP(HostPort(srv.Addr, 8080), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := cli.Run(t, "busybox", "wget", "-q", "-O", "-", "http://"+HostPort(srv.Addr, 8080)+"/"); got != body {
		t.Errorf("wget got %q, want %q", got, body)
	}
	resp, err := cli.HTTPClient().Get("http://" + HostPort(srv.Addr, 8080) + "/index.html")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != body {
		t.Errorf("HTTPClient got %q, want %q", got, body)
	}
	udp := srv.Start(t, "python3", "-c", `import socket,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("0.0.0.0",5353)); print("bound",flush=True); time.sleep(60)`)
	if err := srv.WaitUDP(5353, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := cli.WaitUDP(5353, 200*time.Millisecond); err == nil {
		t.Errorf("WaitUDP saw the server's socket in another namespace")
	}

	if err := httpd.Stop(); !isSignaled(err) {
		t.Errorf("Stop: %v, want a signal exit", err)
	}
	if httpd.Running() {
		t.Errorf("httpd still running after Stop")
	}
	if !strings.Contains(httpd.Output(), "response:200") {
		t.Errorf("httpd output not captured: %q", httpd.Output())
	}
	if err := poll(5*time.Second, func() error {
		if !strings.Contains(udp.Output(), "bound") {
			return errors.New("no output yet")
		}
		return nil
	}); err != nil {
		t.Errorf("python output not captured: %v", err)
	}
	out, err := cli.Exec(t, "sh", "-c", "echo out; echo err >&2; exit 3")
	if err == nil || out != "out\n" || !strings.Contains(err.Error(), "err") {
		t.Errorf("Exec of a failing program = %q, %v", out, err)
	}
}

// TestWrappedMember runs programs through an argv wrapper, as ztnc-run members will.
func TestWrappedMember(t *testing.T) {
	t.Parallel()
	Require(t, "busybox", "bash", "env")
	l := New(t, Config{})
	srv, cli := l.AddHost("srv", ""), l.AddHost("cli", "")
	m := &WrappedMember{
		Host: cli,
		Home: NewLabHome(t, Identity(4)),
		Addr: cli.Addr,
		Wrap: func(nwid string, argv []string) []string {
			return append([]string{"env", "LAB_NWID=" + nwid}, argv...)
		},
		Ready: []string{"sh", "-c", `test "$LAB_NWID" = 0123456789abcdef`},
	}
	if got := m.Address(); got != Identity(4)[:10] {
		t.Errorf("Address() = %s", got)
	}
	ep := m.WaitNetwork(t, "0123456789abcdef", 10*time.Second)
	if got := ep.Run(t, "sh", "-c", "echo $LAB_NWID"); got != "0123456789abcdef\n" {
		t.Errorf("wrapper not applied: %q", got)
	}
	if err := ep.WaitTCP(t, srv.Addr, 8081, time.Second); err == nil {
		t.Errorf("WaitTCP succeeded with no server")
	}
	// The server comes up while the probe loop runs.
	srv.Endpoint().Start(t, "sh", "-c", "sleep 1; exec busybox nc -ll -p 8081 -e echo hi")
	if err := ep.WaitTCP(t, srv.Addr, 8081, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	f := &fatalRecorder{T: t}
	m.Ready = []string{"false"}
	runAndRecover(func() { m.WaitNetwork(f, "0123456789abcdef", 10*time.Second) }, f)
	if !strings.Contains(f.msg, "not ready") {
		t.Errorf("WaitNetwork with a failing Ready: %q", f.msg)
	}
}

// TestTeardown checks that a lab's processes and namespaces are gone after its test fails or
// panics, and that namespaces of dead processes are reaped.
func TestTeardown(t *testing.T) {
	t.Parallel()
	Require(t, "sleep")
	for _, fail := range []func(s T){
		func(s T) { s.Fatalf("deliberate failure") },
		func(s T) { panic("deliberate panic") },
	} {
		var nsNames []string
		var pid int
		err := Standalone(t.Name(), io.Discard, func(s T) {
			l := New(s, Config{})
			h := l.AddHost("h", "")
			pid = h.Start(s, "sleep", "1000").Pid()
			nsNames = []string{l.Bridge.NS, h.NS}
			fail(s)
		})
		if err == nil || !strings.Contains(err.Error(), "deliberate") {
			t.Fatalf("lab run did not fail as planned: %v", err)
		}
		for _, ns := range nsNames {
			if _, err := os.Stat(filepath.Join(netnsDir, ns)); !os.IsNotExist(err) {
				t.Errorf("namespace %s still exists (%v)", ns, err)
			}
		}
		if pid == 0 || processExists(pid) {
			t.Errorf("process %d still exists", pid)
		}
	}

	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%s%d-1-stale", nsPrefix, dead.Process.Pid)
	if err := ip("netns", "add", stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNamespace(stale) })
	reapStaleNamespaces(t)
	if _, err := os.Stat(filepath.Join(netnsDir, stale)); !os.IsNotExist(err) {
		t.Errorf("stale namespace %s not reaped", stale)
	}
}

func TestStandalone(t *testing.T) {
	var log strings.Builder
	var order []string
	err := Standalone("bench", &log, func(s T) {
		s.Cleanup(func() { order = append(order, "first") })
		s.Cleanup(func() { order = append(order, "second") })
		s.Logf("hello %d", 1)
		s.Fatalf("broken: %d", 2)
		order = append(order, "after Fatalf")
	})
	if err == nil || err.Error() != "broken: 2" {
		t.Errorf("err = %v", err)
	}
	if got := strings.Join(order, ","); got != "second,first" {
		t.Errorf("cleanup order %q", got)
	}
	if !strings.Contains(log.String(), "hello 1") {
		t.Errorf("log %q", log.String())
	}
	if err := Standalone("skip", io.Discard, func(s T) { s.Skipf("no tool") }); !errors.Is(err, ErrSkipped) {
		t.Errorf("Skipf: %v", err)
	}
	if err := Standalone("panic", io.Discard, func(s T) { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic: %v", err)
	}
	var dir string
	if err := Standalone("ok", io.Discard, func(s T) { dir = s.TempDir() }); err != nil {
		t.Errorf("ok: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("TempDir %s not removed", dir)
	}
}

func TestQuote(t *testing.T) {
	got := Quote([]string{"wrk", "-H", "Connection: close", "http://192.0.2.1:80/", "it's", ""})
	want := `wrk -H 'Connection: close' http://192.0.2.1:80/ 'it'\''s' ''`
	if got != want {
		t.Errorf("Quote = %s, want %s", got, want)
	}
}

// fatalRecorder turns Fatalf into a recorded message and a panic that runAndRecover catches,
// so that tests can check failure paths of helpers that fail the test.
type fatalRecorder struct {
	*testing.T
	msg string
}

type recordedFatal struct{}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(recordedFatal{})
}

func runAndRecover(fn func(), f *fatalRecorder) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(recordedFatal); !ok {
				panic(r)
			}
		}
	}()
	fn()
}

func TestWaitOutput(t *testing.T) {
	t.Parallel()
	l := New(t, Config{})
	h := l.AddHost("h", "")
	p := h.Start(t, "sh", "-c", "sleep 0.3; echo ready; sleep 100")
	if err := p.WaitOutput("ready", 10*time.Second); err != nil {
		t.Error(err)
	}
	q := h.Start(t, "sh", "-c", "echo bye")
	start := time.Now()
	if err := q.WaitOutput("ready", 10*time.Second); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("WaitOutput on an exited process: %v after %v", err, time.Since(start))
	}
}

func TestNetworkDNSDecoding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *DNS
	}{
		{`{"dns":[]}`, &DNS{}},
		{`{}`, nil},
		{`{"dns":{"domain":"zt.example","servers":["203.0.113.53"]}}`, &DNS{Domain: "zt.example", Servers: []string{"203.0.113.53"}}},
	} {
		var n Network
		if err := json.Unmarshal([]byte(tc.in), &n); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if (n.DNS == nil) != (tc.want == nil) || n.DNS != nil && (n.DNS.Domain != tc.want.Domain || len(n.DNS.Servers) != len(tc.want.Servers)) {
			t.Errorf("%s: got %+v, want %+v", tc.in, n.DNS, tc.want)
		}
	}
}
