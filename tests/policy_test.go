package tests

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// The policy tests run servers on the host's loopback beside ztnc-run: what the programs
// inside reach there, or must not.

// hostProc starts a program on the host (not under ztnc-run), stopped when the test ends.
func hostProc(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("host %s output:\n%s", name, out.String())
		}
	})
	return cmd
}

// waitHostTCP waits until something accepts connections at addr on the host.
func waitHostTCP(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listens at %s after 20 s", addr)
}

// udpEcho is a Python UDP server: it answers each datagram with PREFIX and the datagram.
const udpEcho = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(4096)
    s.sendto(sys.argv[3].encode() + d, a)
`

// hostHTTP serves dir on the host's loopback at a free port, which it returns.
func hostHTTP(t *testing.T, dir string) int {
	t.Helper()
	port := lab.FreePort(t)
	hostProc(t, "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, strconv.Itoa(port))
	waitHostTCP(t, fmt.Sprintf("127.0.0.1:%d", port))
	return port
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFallThrough: by default what is not on the virtual network uses the host's network.
// A program reaches a server on the host's loopback and one on the virtual network, with
// curl, Python (urllib and raw sockets), UDP (unconnected and connected, to a host echo
// server and a virtual one), and nginx proxying to a host backend and a virtual backend
// (nginx registers its upstream sockets with epoll before connect: the fd swapped to a host
// socket must keep its registration).
func TestFallThrough(t *testing.T) {
	need(t, "curl", "python3", "nginx")
	hostDir, virtDir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(hostDir, "where.txt"), "on-the-host\n")
	writeFile(t, filepath.Join(virtDir, "where.txt"), "on-the-virtual-network\n")
	hp := hostHTTP(t, hostDir)
	hu := lab.FreePort(t)
	hostProc(t, "python3", "-c", udpEcho, "127.0.0.1", strconv.Itoa(hu), "host:")

	ngDir := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
worker_processes 2;
error_log %[1]s/error.log info;
pid %[1]s/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  server {
    listen 8090;
    location /host/ { proxy_pass http://127.0.0.1:%[2]d/; }
    location /virt/ { proxy_pass http://198.51.100.1:8080/; }
  }
}
`, ngDir, hp)
	writeFile(t, filepath.Join(ngDir, "nginx.conf"), conf)

	script := retry + fmt.Sprintf(`
python3 -m http.server --directory %[1]s 8080 >/dev/null 2>&1 &
python3 -c '%[4]s' 198.51.100.1 9999 virt: &
nginx -c %[3]s/nginx.conf &
retry curl -sf -o /dev/null http://198.51.100.1:8080/
retry curl -sf -o /dev/null http://198.51.100.1:8090/virt/where.txt
echo "curl host: $(curl -sS http://127.0.0.1:%[2]d/where.txt)"
echo "curl virt: $(curl -sS http://198.51.100.1:8080/where.txt)"
python3 - <<'EOF'
import socket, urllib.request
for name, url in (("host", "http://127.0.0.1:%[2]d/where.txt"), ("virt", "http://198.51.100.1:8080/where.txt")):
    print("urllib %%s: %%s" %% (name, urllib.request.urlopen(url, timeout=10).read().decode().strip()))
for name, addr in (("host", ("127.0.0.1", %[5]d)), ("virt", ("198.51.100.1", 9999))):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(b"unconnected", addr)
    d, src = u.recvfrom(100)
    print("udp %%s: %%s from %%s:%%d" %% (name, d.decode(), src[0], src[1]))
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(5)
    c.connect(addr)
    c.send(b"connected")
    print("udp %%s: %%s, peer %%s:%%d" %% (name, c.recv(100).decode(), *c.getpeername()))
EOF
for i in 1 2 3; do
	echo "nginx host: $(curl -sS http://198.51.100.1:8090/host/where.txt)"
	echo "nginx virt: $(curl -sS http://198.51.100.1:8090/virt/where.txt)"
done
kill $(cat %[3]s/nginx.pid)
`, virtDir, hp, ngDir, strings.ReplaceAll(udpEcho, "'", `"`), hu)
	r := local(t, script)
	mustContain(t, r,
		"curl host: on-the-host\n", "curl virt: on-the-virtual-network\n",
		"urllib host: on-the-host\n", "urllib virt: on-the-virtual-network\n",
		fmt.Sprintf("udp host: host:unconnected from 127.0.0.1:%d\n", hu),
		fmt.Sprintf("udp host: host:connected, peer 127.0.0.1:%d\n", hu),
		"udp virt: virt:unconnected from 198.51.100.1:9999\n", "udp virt: virt:connected, peer 198.51.100.1:9999\n")
	if n := strings.Count(r.Stdout, "nginx host: on-the-host\n"); n != 3 {
		t.Errorf("nginx to the host backend: %d of 3\n%s", n, r)
	}
	if n := strings.Count(r.Stdout, "nginx virt: on-the-virtual-network\n"); n != 3 {
		t.Errorf("nginx to the virtual backend: %d of 3\n%s", n, r)
	}
	if strings.Contains(r.Stderr, "not carried over") {
		t.Errorf("an epoll registration was lost:\n%s", r.Stderr)
	}
}

// TestLoopbackFirst: 127.0.0.1 inside is the container's own loopback first. A sibling
// process's listener on 127.0.0.1:PORT is reached (directly and through a socat relay) even
// though the host's loopback has a server on the same port; it is reachable neither from the
// network (the virtual address) nor from the host. Once it is gone, 127.0.0.1:PORT falls
// through to the host's server. The same for UDP.
func TestLoopbackFirst(t *testing.T) {
	need(t, "curl", "python3", "socat")
	hostDir, innerDir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(hostDir, "who.txt"), "host\n")
	writeFile(t, filepath.Join(innerDir, "who.txt"), "sibling\n")
	port := hostHTTP(t, hostDir)
	hostProc(t, "python3", "-c", udpEcho, "127.0.0.1", strconv.Itoa(port), "host:")
	mark := filepath.Join(t.TempDir(), "inside-up")

	done := make(chan string, 1)
	go func() {
		// While the program runs, the host's loopback still reaches the host's server.
		defer close(done)
		for range 300 {
			if _, err := os.Stat(mark); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		out, err := exec.Command("curl", "-sS", "--max-time", "5", fmt.Sprintf("http://127.0.0.1:%d/who.txt", port)).CombinedOutput()
		if err != nil {
			done <- "error: " + err.Error()
			return
		}
		done <- string(out)
		os.WriteFile(mark+".checked", nil, 0o644)
	}()
	script := retry + fmt.Sprintf(`
python3 -m http.server --bind 127.0.0.1 --directory %[1]s %[2]d >/dev/null 2>&1 &
srv=$!
python3 -c '%[4]s' 127.0.0.1 %[2]d sibling: &
udp=$!
socat TCP-LISTEN:8081,fork,reuseaddr TCP:127.0.0.1:%[2]d &
# Until the sibling listens, 127.0.0.1:PORT is the host's server.
retry sh -c 'curl -sS http://127.0.0.1:%[2]d/who.txt | grep -q sibling'
retry curl -sf -o /dev/null http://198.51.100.1:8081/who.txt
retry sh -c 'echo hi | socat -t 1 - UDP:127.0.0.1:%[2]d | grep -q sibling'
echo "direct: $(curl -sS http://127.0.0.1:%[2]d/who.txt)"
echo "relayed: $(curl -sS http://198.51.100.1:8081/who.txt)"
curl -sS --max-time 5 http://198.51.100.1:%[2]d/who.txt 2>/dev/null || echo "from the network: refused"
echo "udp: $(echo hi | socat -t 2 - UDP:127.0.0.1:%[2]d)"
touch %[3]s
retry test -e %[3]s.checked
kill $srv $udp
wait $srv $udp 2>/dev/null || true
# The listeners' sockets are released as their close is noticed: wait for that.
retry sh -c 'curl -sS http://127.0.0.1:%[2]d/who.txt | grep -q host'
echo "after: $(curl -sS http://127.0.0.1:%[2]d/who.txt)"
retry sh -c 'echo hi | socat -t 1 - UDP:127.0.0.1:%[2]d | grep -q host'
echo "udp after: $(echo hi | socat -t 2 - UDP:127.0.0.1:%[2]d)"
`, innerDir, port, mark, strings.ReplaceAll(udpEcho, "'", `"`))
	r := local(t, script)
	mustContain(t, r, "direct: sibling\n", "relayed: sibling\n", "from the network: refused\n",
		"udp: sibling:hi\n", "after: host\n", "udp after: host:hi\n")
	if got := <-done; got != "host\n" {
		t.Errorf("the host's curl of its own loopback got %q, want the host's server", got)
	}
}

// canary is a server on the host's loopback that counts what reaches it: TCP connections and
// UDP datagrams on one port, written to a file ("tcp N udp M") after each.
const canary = `
import os, socket, sys, threading
port, out = int(sys.argv[1]), sys.argv[2]
counts = {"tcp": 0, "udp": 0}
lock = threading.Lock()
def write():
    # Replaced whole, so that the test never reads a half-written file.
    with open(out + ".new", "w") as f:
        f.write("tcp %d udp %d" % (counts["tcp"], counts["udp"]))
    os.replace(out + ".new", out)
def note(kind):
    with lock:
        counts[kind] += 1
        write()
def tcp():
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port)); l.listen(16)
    while True:
        c, _ = l.accept(); note("tcp")
        try:
            c.settimeout(2); d = c.recv(100); c.sendall(b"canary:" + d)
        except OSError:
            pass
        c.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", port))
threading.Thread(target=tcp, daemon=True).start()
with lock:  # the accept thread may be writing already: both use counts.new
    write()
while True:
    d, a = u.recvfrom(4096); note("udp"); u.sendto(b"canary:" + d, a)
`

func startCanary(t *testing.T) (port int, counts func() string) {
	t.Helper()
	port = lab.FreePort(t)
	out := filepath.Join(t.TempDir(), "counts")
	hostProc(t, "python3", "-c", canary, strconv.Itoa(port), out)
	waitHostTCP(t, fmt.Sprintf("127.0.0.1:%d", port))
	// Start from the count with the wait's own connection in it.
	var base []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if base, _ = os.ReadFile(out); string(base) == "tcp 1 udp 0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the canary did not count the wait's connection: %q", base)
		}
	}
	return port, func() string {
		b, _ := os.ReadFile(out)
		return fmt.Sprintf("before %s, after %s", base, b)
	}
}

// TestIsolate: under --isolate nothing reaches the host's network. Canary servers on the
// host's loopback count 0 connections and 0 datagrams after every way of reaching them has
// been tried (connect blocking and not, curl, sendto, sendmsg, connected UDP), each failing
// with ENETUNREACH, and the DNS responder refuses outside names; packet sockets are refused;
// an --allow-host hole lets exactly its destination through (TCP, unconnected and connected
// UDP).
func TestIsolate(t *testing.T) {
	need(t, "curl", "python3", "dig")
	cp, closed := startCanary(t)
	ap, open := startCanary(t)
	script := fmt.Sprintf(`
python3 - <<'EOF'
import socket, errno
canary, allowed = %d, %d
def err(f):
    try:
        f(); return "no error"
    except OSError as e:
        return errno.errorcode[e.errno]
s = socket.socket()
print("tcp connect:", err(lambda: s.connect(("127.0.0.1", canary))))
n = socket.socket(); n.setblocking(False)
print("tcp non-blocking:", errno.errorcode.get(n.connect_ex(("127.0.0.1", canary)), "0"))
s6 = socket.socket(socket.AF_INET6)
print("tcp v4-mapped:", err(lambda: s6.connect(("::ffff:127.0.0.1", canary))))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("udp sendto:", err(lambda: u.sendto(b"x", ("127.0.0.1", canary))))
print("udp sendmsg:", err(lambda: u.sendmsg([b"x"], [], 0, ("127.0.0.1", canary))))
print("udp connect:", err(lambda: u.connect(("127.0.0.1", canary))))
# The hole: exactly the allowed destination.
a = socket.create_connection(("127.0.0.1", allowed), timeout=5)
a.sendall(b"tcp"); print("allowed tcp:", a.recv(100).decode())
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.settimeout(5)
v.sendto(b"udp", ("127.0.0.1", allowed)); print("allowed udp:", v.recvfrom(100)[0].decode())
w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); w.settimeout(5)
w.connect(("127.0.0.1", allowed)); w.send(b"connected")
print("allowed connected udp:", w.recv(100).decode())
print("from the hole elsewhere:", err(lambda: w.sendto(b"x", ("127.0.0.1", canary))))
print("packet socket:", err(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)))
EOF
curl -sS --max-time 5 http://127.0.0.1:%[1]d/ 2>/dev/null || echo "curl: failed"
echo "dns: $(dig +time=2 +tries=1 example.com | grep -o 'status: [A-Z]*')"
`, cp, ap)
	r := local(t, script, "--isolate", "--allow-host", fmt.Sprintf("127.0.0.1:%d", ap))
	mustContain(t, r, "tcp connect: ENETUNREACH\n", "tcp non-blocking: ENETUNREACH\n",
		"tcp v4-mapped: ENETUNREACH\n", "udp sendto: ENETUNREACH\n", "udp sendmsg: ENETUNREACH\n",
		"udp connect: ENETUNREACH\n", "allowed tcp: canary:tcp\n", "allowed udp: canary:udp\n",
		"allowed connected udp: canary:connected\n", "from the hole elsewhere: ENETUNREACH\n",
		"curl: failed\n", "dns: status: REFUSED\n", "packet socket: EPERM\n")
	time.Sleep(200 * time.Millisecond)
	c := closed()
	if before, after, _ := strings.Cut(strings.TrimPrefix(c, "before "), ", after "); before != after {
		t.Errorf("the isolated program reached the canary: %s", c)
	}
	if o := open(); !strings.Contains(o, "after tcp 2 udp 2") {
		t.Errorf("the allowed canary: %s, want 1 TCP connection and 2 datagrams more", o)
	}
}

// TestFallThroughDNS: names outside the virtual network are forwarded to the host's resolver
// (here dnsmasq on a host loopback address, named by a resolv.conf bind-mounted over
// /etc/resolv.conf in a mount namespace of the test), and refused under --isolate — the
// host's resolver then sees no query at all.
func TestFallThroughDNS(t *testing.T) {
	need(t, "dig", "getent", "dnsmasq", "unshare", "mount")
	if os.Geteuid() != 0 {
		t.Skip("needs root (a mount namespace for resolv.conf)")
	}
	dir := t.TempDir()
	// A loopback address of its own, so that port 53 is free whatever else runs.
	addr := fmt.Sprintf("127.53.%d.%d", os.Getpid()%250+1, time.Now().UnixNano()%250+1)
	log := filepath.Join(dir, "queries.log")
	hostProc(t, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--listen-address="+addr, "--bind-interfaces", "--port=53", "--user=root", "--pid-file=",
		"--address=/outside.example/192.0.2.77", "--log-queries", "--log-facility="+log)
	waitHostTCP(t, addr+":53")
	rc := filepath.Join(dir, "resolv.conf")
	writeFile(t, rc, "nameserver "+addr+"\n")
	run := func(flags ...string) result {
		args := append([]string{"--mount", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, rc, ztncRun}, onLocal(flags...)...)
		args = append(args, "--", "sh", "-c", `
echo "dig: $(dig +short +time=2 +tries=1 outside.example)"
echo "tcp: $(dig +tcp +short +time=2 +tries=1 outside.example)"
echo "getent: $(getent ahostsv4 outside.example | head -1)"
echo "status: $(dig +time=2 +tries=1 outside.example | grep -o 'status: [A-Z]*')"
echo "virtual: $(dig +short web.internal)"`)
		cmd := exec.Command("unshare", args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			t.Fatalf("ztnc-run %v: %v\n%s%s", flags, err, out.String(), errb.String())
		}
		return result{Stdout: out.String(), Stderr: errb.String()}
	}
	r := run("--dns-name", "web")
	mustContain(t, r, "dig: 192.0.2.77\n", "tcp: 192.0.2.77\n", "getent: 192.0.2.77", "status: NOERROR", "virtual: 198.51.100.1\n")
	seen, _ := os.ReadFile(log)
	n := strings.Count(string(seen), "outside.example from")
	if n == 0 {
		t.Fatalf("the host's resolver saw no forwarded query:\n%s", seen)
	}
	r = run("--isolate", "--dns-name", "web")
	mustContain(t, r, "dig: \n", "status: status: REFUSED\n", "virtual: 198.51.100.1\n")
	seen, _ = os.ReadFile(log)
	if m := strings.Count(string(seen), "outside.example from"); m != n {
		t.Errorf("under --isolate the host's resolver got %d queries more:\n%s", m-n, seen)
	}
}

// TestInterfaces: what programs see of their interfaces is the virtual network's (and
// loopback): ip addr and ip -6 addr (iproute2's rtnetlink dumps), hostname -I and Python's
// if_nameindex (glibc: getifaddrs, if_nameindex), glibc's if_nametoindex and if_indextoname (ioctls
// on an AF_UNIX socket; getaddrinfo's %ztnc0 scopes use them), a static Go program (its own netlink code),
// Node's os.networkInterfaces (libuv), the SIOCGIF* ioctls (Python's fcntl, and Java's
// NetworkInterface, whose IPv4 side uses them). Other rtnetlink requests still reach the
// host's kernel (ip route shows the host's table).
func TestInterfaces(t *testing.T) {
	need(t, "ip", "hostname", "python3")
	java := filepath.Join(t.TempDir(), "Ifs.java")
	writeFile(t, java, `import java.net.*;
import java.util.*;
public class Ifs {
  public static void main(String[] a) throws Exception {
    for (NetworkInterface n : Collections.list(NetworkInterface.getNetworkInterfaces()))
      for (InterfaceAddress ia : n.getInterfaceAddresses())
        if (ia.getAddress() instanceof Inet4Address)
          System.out.println("java: " + n.getName() + " " + n.getIndex() + " " + ia.getAddress().getHostAddress() + "/" + ia.getNetworkPrefixLength());
  }
}
`)
	script := `
ip addr
ip -6 addr | sed 's/^/v6: /'
echo "hostname -I: $(hostname -I)"
python3 -c 'import socket; print("if_nameindex:", socket.if_nameindex())'
python3 -c 'import socket; i = socket.if_nametoindex("ztnc0"); print("if_nametoindex:", i, socket.if_indextoname(i), socket.getaddrinfo("fe80::1%ztnc0", 80, socket.AF_INET6)[0][4][3])'
` + ifprog + ` | sed 's/^/go: /'
python3 - <<'EOF'
import socket, fcntl, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
req = struct.pack("40s", b"ztnc0")
print("ioctl addr:", socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24]))
print("ioctl mask:", socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x891b, req)[20:24]))
print("ioctl index:", struct.unpack("i", fcntl.ioctl(s.fileno(), 0x8933, req)[16:20])[0])
EOF
if command -v java >/dev/null; then java ` + java + `; fi
if command -v node >/dev/null; then node -e 'const i = require("os").networkInterfaces(); for (const [n, as] of Object.entries(i)) for (const a of as) console.log("node:", n, a.cidr)'; fi
echo "route lines: $(ip route show table all | wc -l)"
`
	// Only an IPv4 --local: the IPv6 address ztnc-run derives from it (fd7a:746e:6300::/64, the IPv4
	// address in the low bits) is listed too.
	r := ztnc(t, 3*time.Minute, "--local", localNet, "--", "sh", "-c", "set -e\n"+script)
	if r.Code != 0 {
		t.Fatalf("script failed: %s", r)
	}
	mustContain(t, r, "inet 127.0.0.1/8 scope host lo", "inet 198.51.100.1/24 brd 198.51.100.255 scope global ztnc0",
		"link/ether 02:7a:74:6e:63:01", "v6:     inet6 fd7a:746e:6300::c633:6401/64 scope global", "v6:     inet6 fe80::",
		"hostname -I: 198.51.100.1 fd7a:746e:6300::c633:6401 \n", "if_nameindex: [(1, 'lo'), (2, 'ztnc0')]",
		"if_nametoindex: 2 ztnc0 2\n",
		"go: lo index=1 mtu=65536 up=true mac= 127.0.0.1/8 ::1/128\n",
		"go: ztnc0 index=2 mtu=2800 up=true mac=02:7a:74:6e:63:01 198.51.100.1/24 fd7a:746e:6300::c633:6401/64 fe80::")
	mustContain(t, r, "ioctl addr: 198.51.100.1\n", "ioctl mask: 255.255.255.0\n", "ioctl index: 2\n")
	if _, err := exec.LookPath("java"); err == nil {
		mustContain(t, r, "java: ztnc0 2 198.51.100.1/24\n", "java: lo 1 127.0.0.1/8\n")
	}
	if _, err := exec.LookPath("node"); err == nil {
		mustContain(t, r, "node: ztnc0 198.51.100.1/24\n", "node: lo 127.0.0.1/8\n")
	}
	host, _ := exec.Command("ip", "addr").Output()
	for _, line := range strings.Split(string(host), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "inet" && !strings.HasPrefix(f[1], "127.") && strings.Contains(r.Stdout, f[1]) {
			t.Errorf("the program sees the host's address %s", f[1])
		}
	}
	if strings.Contains(r.Stdout, "route lines: 0\n") {
		t.Errorf("ip route got nothing from the host's kernel:\n%s", r)
	}
}

// TestIsolateFromEnvironment: ZTNC_ISOLATE and ZTNC_ALLOW_HOST (container entrypoint mode) are
// --isolate and --allow-host.
func TestIsolateFromEnvironment(t *testing.T) {
	need(t, "python3")
	allowed, counts := startCanary(t)
	closed, closedCounts := startCanary(t)
	cmd := exec.Command(ztncRun, "--local", localNet, "--", "python3", "-c", fmt.Sprintf(`
import socket, errno
a = socket.create_connection(("127.0.0.1", %d), timeout=5); a.sendall(b"env"); print("allowed:", a.recv(100).decode())
print("other:", errno.errorcode[socket.socket().connect_ex(("127.0.0.1", %d))])
`, allowed, closed))
	cmd.Env = append(os.Environ(), "ZTNC_ISOLATE=1", fmt.Sprintf("ZTNC_ALLOW_HOST=127.0.0.1:%d", allowed))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "allowed: canary:env\n") || !strings.Contains(string(out), "other: ENETUNREACH\n") {
		t.Fatalf("%v\n%s", err, out)
	}
	time.Sleep(100 * time.Millisecond)
	if c := closedCounts(); !strings.HasSuffix(c, "after tcp 1 udp 0") {
		t.Errorf("the closed canary: %s", c)
	}
	if c := counts(); !strings.HasSuffix(c, "after tcp 2 udp 0") {
		t.Errorf("the allowed canary: %s", c)
	}
}

// TestIsolateRacingAddress: under --isolate a program cannot slip past the check by changing a
// connect's address in memory while the supervisor decides (another thread flips the port
// between an allowed and a forbidden canary): the supervisor connects with the address it
// checked, never the kernel with what memory holds later, so the forbidden canary sees nothing.
func TestIsolateRacingAddress(t *testing.T) {
	need(t)
	good, goodCounts := startCanary(t)
	bad, badCounts := startCanary(t)
	r := ztnc(t, 2*time.Minute, onLocal("--isolate", "--allow-host", fmt.Sprintf("127.0.0.1:%d", good),
		"--", raceprog, strconv.Itoa(good), strconv.Itoa(bad), "300")...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "connected ") {
		t.Fatalf("%s", r)
	}
	// The canaries count connections as they accept them, which may be after the program
	// ended: wait for the allowed one's, then give a forbidden one as long again.
	start := time.Now()
	for c := goodCounts(); strings.HasSuffix(c, "after tcp 1 udp 0"); c = goodCounts() {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no connect reached the allowed canary: %s", c)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(max(200*time.Millisecond, time.Since(start)))
	t.Logf("%s; allowed canary %s", strings.TrimSpace(r.Stdout), goodCounts())
	if c := badCounts(); !strings.HasSuffix(c, "after tcp 1 udp 0") {
		t.Errorf("a racing connect reached the forbidden canary: %s", c)
	}
}

// TestFallThroughPing: ping to a host destination (the host's own address, so that nothing
// leaves the machine) works where the host allows it: through a host ping socket, or, when
// the host refuses those (ping_group_range) and ping holds CAP_NET_RAW, a raw one — as ping
// itself would on the host. Under --isolate it is unreachable.
func TestFallThroughPing(t *testing.T) {
	need(t, "ping")
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_RAW) or an open ping_group_range")
	}
	var hostAddr string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok && p.IP.To4() != nil && !p.IP.IsLoopback() {
			hostAddr = p.IP.String()
			break
		}
	}
	if hostAddr == "" {
		t.Skip("the host has no IPv4 address but loopback")
	}
	r := local(t, "ping -c 2 -i 0.2 -W 2 "+hostAddr)
	mustContain(t, r, "2 packets transmitted, 2 received")
	r = ztnc(t, time.Minute, onLocal("--isolate", "--", "ping", "-c", "1", "-W", "1", hostAddr)...)
	if r.Code == 0 || !strings.Contains(r.Stderr, "Network is unreachable") {
		t.Errorf("ping under --isolate: %s", r)
	}
}
