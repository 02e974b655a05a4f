package host

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// idleProg holds conns connections to its own server idle until the file named by argv[1]
// exists, then uploads 64 KiB of its own data on each and checks the sha256 the server saw.
const idleProg = `
import hashlib, os, socket, sys, threading, time
conns, release = 100, sys.argv[1]
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
`

// TestIdleConnectionsPark: a program's 100 connections to its own server, left idle, park
// every proxy loop (the stack's ztnc_stack_parked_loops gauge reaches 400: two ends, two loops
// each); then each connection still carries an upload and its reply.
func TestIdleConnectionsPark(t *testing.T) {
	need(t, "python3")
	port := lab.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	release := t.TempDir() + "/release"
	m := ztnc(t, "idle", nil, "--local", "198.51.100.1/24", "--health", fmt.Sprintf("127.0.0.1:%d", port),
		"--", "python3", "-c", idleProg, release)
	m.WaitOutput(t, "connections open", 60*time.Second, func(stdout, _ string) bool { return strings.Contains(stdout, "open 100") })
	// Sweeps run every 5 s: a loop parks after waiting through one.
	waitFor(t, m, "400 parked loops", 30*time.Second, func() error {
		if v, ok := scrape(t, url).samples[`ztnc_stack_parked_loops{nwid="local"}`]; !ok || v != 400 {
			return fmt.Errorf("%v parked (gauge there: %v)", v, ok)
		}
		return nil
	})
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := m.Wait(t, 60*time.Second); code != 0 || !strings.Contains(m.Stdout.String(), "uploads ok 100") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &m.Stdout, &m.Stderr)
	}
}
