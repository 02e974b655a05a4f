package host

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// serveScript accepts TCP connections on ADDR PORT, answers each with MSG and a newline, and
// prints "accepted" for each.
const serveScript = `import socket, sys
addr, port, msg = sys.argv[1], int(sys.argv[2]), sys.argv[3]
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((addr, port))
l.listen(16)
print('listening', flush=True)
while True:
    c, peer = l.accept()
    print('accepted', peer[0], flush=True)
    c.sendall((msg + '\n').encode())
    c.close()
`

// probeScript tries each ADDR:PORT argument in rounds, twice a second: a TCP connect (3 s
// timeout) that reads the server's line, and a UDP sendto. Each try prints
// "round N tcp|udp ADDR:PORT RESULT" (RESULT: "ok" and what the server said, "timeout", or
// "err" and the errno's name), each round ends with "round N end".
const probeScript = `import errno, socket, sys, time
targets = [(a.rsplit(':', 1)[0], int(a.rsplit(':', 1)[1])) for a in sys.argv[1:]]
def err(e):
    return 'err ' + errno.errorcode.get(e.errno, str(e.errno))
n = 0
while True:
    n += 1
    for host, port in targets:
        s = socket.socket()
        s.settimeout(3)
        try:
            s.connect((host, port))
            r = 'ok ' + s.recv(64).decode().strip()
        except socket.timeout:
            r = 'timeout'
        except OSError as e:
            r = err(e)
        finally:
            s.close()
        print('round %d tcp %s:%d %s' % (n, host, port, r), flush=True)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.sendto(b'probe', (host, port))
            r = 'ok'
        except OSError as e:
            r = err(e)
        finally:
            u.close()
        print('round %d udp %s:%d %s' % (n, host, port, r), flush=True)
    print('round %d end' % n, flush=True)
    time.sleep(0.5)
`

// probeRounds are the complete rounds a probe has printed: by round, "tcp|udp ADDR:PORT" →
// result.
func probeRounds(out string) map[int]map[string]string {
	rounds := map[int]map[string]string{}
	complete := map[int]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, " ", 5)
		if len(f) < 3 || f[0] != "round" {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		if f[2] == "end" {
			complete[n] = true
			continue
		}
		if len(f) < 5 {
			continue
		}
		if rounds[n] == nil {
			rounds[n] = map[string]string{}
		}
		rounds[n][f[2]+" "+f[3]] = f[4]
	}
	for n := range rounds {
		if !complete[n] {
			delete(rounds, n)
		}
	}
	return rounds
}

// prober reads a running probe's rounds.
type prober struct {
	t *testing.T
	p *lab.Proc
}

// last returns the number of the last complete round (0: none).
func (pr prober) last() int {
	last := 0
	for n := range probeRounds(pr.p.Output()) {
		last = max(last, n)
	}
	return last
}

// await waits for a round after round `after` whose results hold want (key → result), and
// returns its number.
func (pr prober) await(what string, after int, timeout time.Duration, want map[string]string) int {
	pr.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rounds := probeRounds(pr.p.Output())
		for n := after + 1; rounds[n] != nil; n++ {
			if holds(rounds[n], want) {
				return n
			}
		}
		if !pr.p.Running() || time.Now().After(deadline) {
			pr.t.Fatalf("%s: no round after %d with %v within %v; last rounds:\n%s", what, after, want, timeout, pr.tail(6))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// expect waits for the count rounds after round `after` and fails the test unless each holds
// want; it returns the last one's number.
func (pr prober) expect(what string, after, count int, want map[string]string) int {
	pr.t.Helper()
	deadline := time.Now().Add(time.Duration(count) * 15 * time.Second)
	for pr.last() < after+count {
		if !pr.p.Running() || time.Now().After(deadline) {
			pr.t.Fatalf("%s: the probe did not go on; last rounds:\n%s", what, pr.tail(6))
		}
		time.Sleep(200 * time.Millisecond)
	}
	rounds := probeRounds(pr.p.Output())
	for n := after + 1; n <= after+count; n++ {
		if !holds(rounds[n], want) {
			pr.t.Errorf("%s: round %d: %v, want %v", what, n, rounds[n], want)
		}
	}
	return after + count
}

func holds(round, want map[string]string) bool {
	for k, v := range want {
		if round[k] != v {
			return false
		}
	}
	return true
}

// tail returns the probe's last n lines.
func (pr prober) tail(n int) string {
	lines := strings.Split(strings.TrimSpace(pr.p.Output()), "\n")
	return strings.Join(lines[max(0, len(lines)-n*5):], "\n")
}

// networkStatus returns the status of the (only) network of the ztnc-run on home.
func networkStatus(t *testing.T, home *lab.Home) string {
	t.Helper()
	var nets []networkJSON
	if r := cli(t, &nets, "listnetworks", "-j", "--home", home.Dir); r.Code != 0 || len(nets) != 1 {
		return fmt.Sprintf("(listnetworks: %s)", r)
	}
	return nets[0].Status
}

// TestFailClosed: fall-through never takes a virtual network's destinations to the host while
// that network is not OK. Member B runs a probe under `ztnc-run --wait 0`, on a fresh home,
// before the controller has authorized it; its namespace has member A's virtual address on
// its loopback, where a canary listens, and a server on its own LAN address (the host's
// network). The probe sees:
//
//   - before B's first config (the network's routes unknown): ENETUNREACH for A's virtual
//     address and for the host's network alike;
//   - once authorized: A's server over the virtual network, and the host's network;
//   - deauthorized (ACCESS_DENIED, the last config kept): ENETUNREACH for A's virtual
//     address, at once, while the host's network stays reachable;
//   - authorized again: A's server.
//
// The canary sees no connection at any time.
func TestFailClosed(t *testing.T) {
	need(t, "python3", "ip")
	l := lab.New(t, lab.Config{})
	infra := l.AddHost("infra", "192.0.2.1")
	hostA := l.AddHost("a", "192.0.2.5")
	hostB := l.AddHost("b", "192.0.2.9")
	dir := t.TempDir()
	serve, probe := filepath.Join(dir, "serve.py"), filepath.Join(dir, "probe.py")
	os.WriteFile(serve, []byte(serveScript), 0o644)
	os.WriteFile(probe, []byte(probeScript), 0o644)

	// Our root and controller.
	planet := lab.StartZtncRoot(t, ztncRun, infra, lab.Identity(rootIdentity))
	ctl := lab.StartZtncController(t, ztncRun, infra, lab.Identity(controllerIdentity), planet)
	nwid := createNetwork(t, ctl, "failclosed")
	member := func(n int) *lab.Home {
		h := homeWith(t, n)
		h.SetPlanet(t, planet)
		return h
	}

	// A: a server on the virtual network.
	homeA, homeB := member(2), member(3)
	addrA, addrB := netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("203.0.113.9")
	if err := ctl.Authorize(t.Context(), nwid, homeA.Address(), addrA); err != nil {
		t.Fatal(err)
	}
	server := hostA.Start(t, ztncRun, "--nwid", nwid, "--home", homeA.Dir, "--bind", hostA.Addr.String(), "--port", "9993",
		"--", "python3", serve, "0.0.0.0", "8080", "virtual")
	if err := server.WaitOutput("listening", 60*time.Second); err != nil {
		t.Fatal(err)
	}

	// B's namespace: the canary at A's virtual address, a server on the host's network.
	hostB.Run(t, "ip", "addr", "add", addrA.String()+"/32", "dev", "lo")
	canary := hostB.Start(t, "python3", serve, addrA.String(), "8080", "canary")
	hostServer := hostB.Start(t, "python3", serve, hostB.Addr.String(), "8081", "host")
	for _, p := range []*lab.Proc{canary, hostServer} {
		if err := p.WaitOutput("listening", 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	virtual, host := lab.HostPort(addrA, 8080), lab.HostPort(hostB.Addr, 8081)
	tcpV, udpV, tcpH, udpH := "tcp "+virtual, "udp "+virtual, "tcp "+host, "udp "+host
	const unreach = "err ENETUNREACH"

	// B, not authorized yet, fresh home, --wait 0: no routes known.
	pr := prober{t, hostB.Start(t, ztncRun, "--nwid", nwid, "--home", homeB.Dir, "--bind", hostB.Addr.String(), "--port", "9993",
		"--wait", "0", "--", "python3", probe, virtual, host)}
	waitFor(t, nil, "B denied", 30*time.Second, func() error {
		if s := networkStatus(t, homeB); s != "ACCESS_DENIED" {
			return fmt.Errorf("status %s", s)
		}
		return nil
	})
	n := pr.expect("no config yet", pr.last(), 2, map[string]string{tcpV: unreach, udpV: unreach, tcpH: unreach, udpH: unreach})

	// Authorized: the virtual network and the host's.
	if err := ctl.Authorize(t.Context(), nwid, homeB.Address(), addrB); err != nil {
		t.Fatal(err)
	}
	up := map[string]string{tcpV: "ok virtual", udpV: "ok", tcpH: "ok host", udpH: "ok"}
	n = pr.await("authorized", n, 60*time.Second, up)
	pr.expect("authorized", n, 2, up)

	// Deauthorized: B learns it at its next config request (within a minute).
	if err := ctl.Deauthorize(t.Context(), nwid, homeB.Address()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, nil, "B denied after deauthorization", 90*time.Second, func() error {
		if s := networkStatus(t, homeB); s != "ACCESS_DENIED" {
			return fmt.Errorf("status %s", s)
		}
		return nil
	})
	down := map[string]string{tcpV: unreach, udpV: unreach, tcpH: "ok host", udpH: "ok"}
	n = pr.await("deauthorized", pr.last(), 10*time.Second, down)
	n = pr.expect("deauthorized", n, 3, down)

	// Authorized again.
	if err := ctl.Authorize(t.Context(), nwid, homeB.Address(), addrB); err != nil {
		t.Fatal(err)
	}
	pr.await("authorized again", n, 60*time.Second, up)

	if strings.Contains(canary.Output(), "accepted") || strings.Contains(pr.p.Output(), "ok canary") {
		t.Errorf("the canary at %s on B's host network was reached:\n%s", virtual, canary.Output())
	}
}
