package host

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// idleProg holds conns connections to its own server, and socks UDP sockets connected to its
// own echo server, idle until the file named by argv[1] exists. Then it uploads 64 KiB of its
// own data on each connection and checks the sha256 the server saw, and sends a datagram on
// each UDP socket and checks the sha256 echoed.
const idleProg = `
import hashlib, os, socket, sys, threading, time
conns, socks, release = 100, 50, sys.argv[1]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("198.51.100.1", 7001))
def echo():
    while True:
        d, a = u.recvfrom(2048)
        u.sendto(hashlib.sha256(d).digest(), a)
threading.Thread(target=echo, daemon=True).start()
def exchange(s):
    d = os.urandom(1000)
    s.send(d)
    return s.recv(64) == hashlib.sha256(d).digest()
us = []
for _ in range(socks):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    s.connect(("198.51.100.1", 7001))
    if not exchange(s): sys.exit("no echo")
    us.append(s)
srv = socket.create_server(("198.51.100.1", 7000), backlog=conns)
def serve(c):
    f = c.makefile("rb")
    n = int(f.readline())
    c.sendall(hashlib.sha256(f.read(n)).hexdigest().encode() + b"\n")
    c.close()
def accept():
    while True:
        threading.Thread(target=serve, args=(srv.accept()[0],)).start()
threading.Thread(target=accept, daemon=True).start()
cs = [socket.create_connection(("198.51.100.1", 7000)) for _ in range(conns)]
print("open", len(cs), flush=True)
while not os.path.exists(release):
    time.sleep(0.05)
ok = 0
for i, c in enumerate(cs):
    data = os.urandom(65536)
    c.sendall(b"65536\n" + data)
    if c.makefile("rb").readline().strip() == hashlib.sha256(data).hexdigest().encode():
        ok += 1
print("uploads ok", ok, flush=True)
print("datagrams ok", sum(exchange(s) for s in us), flush=True)
`

// TestIdleConnectionsPark: a program's 100 connections to its own server and 50 UDP sockets
// connected to its own echo server, left idle, park every proxy loop (the stack's
// ztnc_stack_parked_loops gauge reaches 502: two ends of each connection and 51 UDP sockets,
// two loops each, and none is left on a goroutine); then each connection still carries an upload and its reply, and each UDP
// socket a datagram and its echo.
func TestIdleConnectionsPark(t *testing.T) {
	m, url, release := runHolding(t, "idle", idleProg, "open 100")
	// Sweeps run every 5 s: a loop parks after waiting through one.
	waitFor(t, m, "502 parked loops", 30*time.Second, func() error {
		samples := scrape(t, url).samples
		if v, ok := samples[`ztnc_stack_parked_loops{nwid="local"}`]; !ok || v != 502 {
			return fmt.Errorf("%v parked (gauge there: %v)", v, ok)
		}
		if v := samples[`ztnc_stack_parks_total{nwid="local"}`]; v < 502 {
			return fmt.Errorf("502 loops parked but %v parks counted", v)
		}
		if v, ok := samples[`ztnc_stack_running_loops{nwid="local"}`]; !ok || v != 0 {
			return fmt.Errorf("502 loops parked but %v on goroutines (gauge there: %v)", v, ok)
		}
		if v, ok := samples[`ztnc_stack_park_failures_total{nwid="local"}`]; !ok || v != 0 {
			return fmt.Errorf("%v parks refused (counter there: %v)", v, ok)
		}
		return nil
	})
	releaseHolding(t, m, release, "uploads ok 100\ndatagrams ok 50")
}

// crowdProg opens conns connections to its own echo server (one thread, a selector), each
// carrying a message and its echo, and holds them until the file named by argv[1] exists;
// then each carries another.
const crowdProg = `
import os, selectors, socket, sys, threading, time
conns, release = 600, sys.argv[1]
srv = socket.create_server(("198.51.100.1", 7002), backlog=conns)
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ)
def serve():
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is srv:
                sel.register(srv.accept()[0], selectors.EVENT_READ)
                continue
            d = s.recv(4096)
            if d:
                s.sendall(d[::-1])
            else:
                sel.unregister(s)
                s.close()
threading.Thread(target=serve, daemon=True).start()
def exchange(c, i):
    m = b"message %d %s" % (i, os.urandom(8).hex().encode())
    c.sendall(m)
    got = b""
    while len(got) < len(m):
        got += c.recv(4096)
    return got == m[::-1]
cs = []
for i in range(conns):
    c = socket.create_connection(("198.51.100.1", 7002), timeout=10)
    if not exchange(c, i): sys.exit("bad echo")
    cs.append(c)
print("open", len(cs), flush=True)
while not os.path.exists(release):
    time.sleep(0.05)
print("echo ok", sum(exchange(c, i) for i, c in enumerate(cs)), flush=True)
`

// TestCrowdedStackParksAtOnce: a program that opens 600 connections to its own server (2,400
// proxy loops) crowds its stack, whose loops then park as soon as they wait instead of
// holding goroutines until a sweep; every connection still carries its messages.
func TestCrowdedStackParksAtOnce(t *testing.T) {
	m, url, release := runHolding(t, "crowd", crowdProg, "open 600")
	// The first 1,024 loops (and those of a connection that started with them) keep their
	// goroutines until a sweep (the first parks no sooner than 5 s after they start); the
	// rest park as soon as they wait, which the last connections' may not have done yet.
	waitFor(t, m, "parked crowd", 2*time.Second, func() error {
		samples := scrape(t, url).samples
		running, parked := samples[`ztnc_stack_running_loops{nwid="local"}`], samples[`ztnc_stack_parked_loops{nwid="local"}`]
		if running > 1024+2 || running+parked != 2400 {
			return fmt.Errorf("%v loops on goroutines and %v parked; want at most 1026 of 2400 on goroutines", running, parked)
		}
		return nil
	})
	releaseHolding(t, m, release, "echo ok 600")
}

// runHolding runs the Python program prog under ztnc-run on a local network, with /metrics at
// url, and waits until it prints opened; prog holds its sockets until the file release exists.
func runHolding(t *testing.T, name, prog, opened string) (m *proc, url, release string) {
	t.Helper()
	need(t, "python3")
	port := lab.FreePort(t)
	url = fmt.Sprintf("http://127.0.0.1:%d", port)
	release = t.TempDir() + "/release"
	m = ztnc(t, name, nil, "--local", "198.51.100.1/24", "--health", fmt.Sprintf("127.0.0.1:%d", port),
		"--", "python3", "-c", prog, release)
	m.WaitOutput(t, "connections open", 60*time.Second, func(stdout, _ string) bool { return strings.Contains(stdout, opened) })
	return m, url, release
}

// releaseHolding lets a program started by runHolding go (it creates release) and checks
// that it exits 0 having printed want.
func releaseHolding(t *testing.T, m *proc, release, want string) {
	t.Helper()
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := m.Wait(t, 60*time.Second); code != 0 || !strings.Contains(m.Stdout.String(), want) {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &m.Stdout, &m.Stderr)
	}
}
