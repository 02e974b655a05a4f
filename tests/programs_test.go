package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func webRoot(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello from the virtual network\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCurlPythonHTTPServer(t *testing.T) {
	need(t, "curl", "python3")
	dir := webRoot(t)
	r := local(t, retry+`
python3 -m http.server 8000 --bind 198.51.100.1 --directory `+dir+` >/dev/null 2>&1 &
retry curl -sf -o /dev/null http://198.51.100.1:8000/
curl -sSf http://198.51.100.1:8000/index.html
kill $!
`)
	mustContain(t, r, "hello from the virtual network")
}

func TestCurlPythonHTTPServerIPv6(t *testing.T) {
	need(t, "curl", "python3")
	dir := webRoot(t)
	r := local(t, retry+`
python3 -m http.server 8000 --bind 2001:db8:198::1 --directory `+dir+` >/dev/null 2>&1 &
retry curl -6 -sf -o /dev/null 'http://[2001:db8:198::1]:8000/'
curl -6 -sSf 'http://[2001:db8:198::1]:8000/index.html'
kill $!
`)
	mustContain(t, r, "hello from the virtual network")
}

// TestBusybox runs the statically linked busybox: httpd serves, wget fetches.
func TestBusybox(t *testing.T) {
	need(t, "busybox")
	dir := webRoot(t)
	r := local(t, retry+`
busybox httpd -f -p 198.51.100.1:8080 -h `+dir+` &
retry busybox wget -q -O /dev/null http://198.51.100.1:8080/index.html
busybox wget -q -O - http://198.51.100.1:8080/index.html
busybox wget -q -O - 'http://[2001:db8:198::1]:8080/index.html' 2>/dev/null && echo "v4-only server answered v6" || true
kill $!
# A dual-stack server (bound to the IPv6 any address) answers both.
busybox httpd -f -p 8081 -h `+dir+` &
retry busybox wget -q -O /dev/null 'http://[2001:db8:198::1]:8081/index.html'
busybox wget -q -O - 'http://[2001:db8:198::1]:8081/index.html' | sed 's/^/v6: /'
busybox wget -q -O - 'http://198.51.100.1:8081/index.html' | sed 's/^/v4: /'
kill $!
`)
	mustContain(t, r, "hello from the virtual network", "v6: hello", "v4: hello")
	if strings.Contains(r.Stdout, "answered v6") {
		t.Fatal("a server bound to 198.51.100.1 answered on IPv6")
	}
}

// TestShortLivedProcessesLeaveNoFDs: a program that runs many short-lived socket users (a
// shell, a prefork server, a CI script) must not leave ztnc-run holding file descriptors for
// them — it needs its own for sockets. Three waves of 100 wget processes each make a socket
// and connect (refused: nothing listens); once they have exited, ztnc-run's fds come back to
// what they were (a few opened on first use, such as the sock_diag socket, aside).
func TestShortLivedProcessesLeaveNoFDs(t *testing.T) {
	need(t, "busybox")
	r := local(t, `
fds() { ls /proc/$PPID/fd | wc -l; }
before=$(fds)
for wave in 1 2 3; do
	p=
	for i in $(seq 100); do busybox wget -q -O /dev/null http://198.51.100.1:9/ 2>/dev/null & p="$p $!"; done
	wait $p || true
done
i=0
while [ $(fds) -gt $((before + 4)) ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done
echo "before: $before after: $(fds)"
`)
	m := regexp.MustCompile(`before: (\d+) after: (\d+)`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no fd counts in the output\n%s", r)
	}
	before, _ := strconv.Atoi(m[1])
	after, _ := strconv.Atoi(m[2])
	if after > before+4 {
		t.Fatalf("ztnc-run holds %d fds 10 s after 300 short-lived processes exited, %d before\n%s", after, before, r)
	}
}

// TestStaticGo runs a Go server and client built with CGO_ENABLED=0, over IPv4 and IPv6, and
// checks that both ends agree on every address (getsockname/getpeername through Go's net).
func TestStaticGo(t *testing.T) {
	need(t)
	r := local(t, retry+tcpprog+` serve :7000 &
retry `+tcpprog+` echo 198.51.100.1:7000 ping
`+tcpprog+` echo 127.0.0.1:7000 loopback
`+tcpprog+` names 198.51.100.1:7000
`+tcpprog+` names '[2001:db8:198::1]:7000'
`+tcpprog+` names '[::1]:7000'
kill $!
`)
	mustContain(t, r, "ping\n", "loopback\n",
		"remote 198.51.100.1:7000;", "remote [2001:db8:198::1]:7000;", "remote [::1]:7000;")
}

// TestForkingServer: python's ForkingTCPServer accepts in the parent and serves each
// connection in a forked child, which closes the listener; the parent closes its copy of the
// connection. State follows the socket, not (pid, fd).
func TestForkingServer(t *testing.T) {
	need(t, "python3")
	r := local(t, retry+`
python3 - <<'EOF' &
import socketserver, os
class H(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline()
        self.wfile.write(b"pid %d says %s" % (os.getpid(), line))
socketserver.ForkingTCPServer(("198.51.100.1", 7100), H).serve_forever()
EOF
python3 - <<'EOF'
import socket, time, concurrent.futures
def one(i):
    for _ in range(100):
        try:
            s = socket.create_connection(("198.51.100.1", 7100), timeout=10)
            break
        except ConnectionRefusedError:
            time.sleep(0.1)
    s.sendall(b"hello %d\n" % i)
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk: break
        data += chunk
    s.close()
    return data.decode()
one(-1)
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    replies = list(ex.map(one, range(40)))
pids = {r.split()[1] for r in replies}
assert all(r.endswith("hello %d\n" % i) for i, r in enumerate(replies)), replies
print("replies", len(replies), "server processes", len(pids))
EOF
kill $!
`)
	m := regexp.MustCompile(`replies 40 server processes (\d+)`).FindStringSubmatch(r.Stdout)
	if m == nil || m[1] == "1" {
		t.Fatalf("want 40 replies from forked children\n%s", r)
	}
}

// TestManyConnectionsUnderPreemption: 1,000 sequential connections from a Go client whose
// busy goroutines keep the runtime preempting (SIGURG: forced preemption and hundreds of
// garbage collections) while its socket calls are trapped.
func TestManyConnectionsUnderPreemption(t *testing.T) {
	need(t)
	r := local(t, retry+tcpprog+` serve 198.51.100.1:7000 >/dev/null &
retry `+tcpprog+` echo 198.51.100.1:7000 up >/dev/null
GOMAXPROCS=4 `+tcpprog+` many 198.51.100.1:7000 1000
kill $!
`)
	m := regexp.MustCompile(`connections 1000 failures 0 gc_cycles (\d+)`).FindStringSubmatch(r.Stdout)
	if m == nil || len(m[1]) < 3 {
		t.Fatalf("want 0 failures under at least 100 collections (each preempts every goroutine)\n%s", r)
	}
}

// TestParallelConnections: 2,000 connections open at once (connects and accepts in flight
// together, then every one held), then each uploads 64 KiB of its own data and checks the
// sha256 the server saw. ztnc-run holds two fds per connection here (both ends are its
// programs), so the hard fd limit must allow ~4,500.
func TestParallelConnections(t *testing.T) {
	need(t)
	const n = 2000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max < 3*n {
		t.Skipf("hard limit on open files %d, want %d", lim.Max, 3*n)
	}
	r := local(t, retry+tcpprog+` serve 198.51.100.1:7000 >/dev/null &
retry `+tcpprog+` echo 198.51.100.1:7000 up >/dev/null
`+tcpprog+` parallel 198.51.100.1:7000 `+strconv.Itoa(n)+`
kill $!
`)
	mustContain(t, r, fmt.Sprintf("parallel %d open %d failures 0", n, n))
	t.Log(strings.TrimSpace(r.Stdout))
}

// TestBulkTransfer moves 1 GiB through the stack and compares the sender's and the receiver's
// sha256.
func TestBulkTransfer(t *testing.T) {
	need(t)
	serverOut := filepath.Join(t.TempDir(), "server.out")
	r := local(t, retry+tcpprog+` serve 198.51.100.1:7000 >`+serverOut+` 2>&1 &
retry `+tcpprog+` echo 198.51.100.1:7000 up >/dev/null
`+tcpprog+` bulk 198.51.100.1:7000 1073741824
retry grep -q 'sent sha256' `+serverOut+`
cat `+serverOut+`
kill $!
`)
	sent := regexp.MustCompile(`sent sha256 ([0-9a-f]{64})`).FindStringSubmatch(r.Stdout)
	got := regexp.MustCompile(`received sha256 ([0-9a-f]{64})`).FindStringSubmatch(r.Stdout)
	if sent == nil || got == nil || sent[1] != got[1] {
		t.Fatalf("sha256 mismatch or missing\n%s", r)
	}
	t.Log(regexp.MustCompile(`bytes .*`).FindString(r.Stdout))
}
