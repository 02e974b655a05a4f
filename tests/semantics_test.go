package tests

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// python runs a python3 program under ztnc-run and expects it to print OK.
func python(t *testing.T, prog string) result {
	t.Helper()
	need(t, "python3")
	r := ztnc(t, 2*time.Minute, onLocal("--", "python3", "-c", prog)...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "OK") {
		t.Fatalf("python failed: %s", r)
	}
	return r
}

// TestEpollBeforeConnect registers the socket with epoll before a non-blocking connect (as
// nginx does for upstreams): EPOLLOUT must come exactly when the connection is established,
// not before, and SO_ERROR must then be 0.
func TestEpollBeforeConnect(t *testing.T) {
	python(t, `
import socket, select, errno
srv = socket.socket(); srv.bind(("198.51.100.1", 9000)); srv.listen()
ep = select.epoll()
c = socket.socket(); c.setblocking(False)
ep.register(c.fileno(), select.EPOLLOUT | select.EPOLLIN | select.EPOLLET)
assert c.connect_ex(("198.51.100.1", 9000)) == errno.EINPROGRESS
ev = ep.poll(5)
assert ev and ev[0][1] & select.EPOLLOUT, ev
assert c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
a, peer = srv.accept()
c.send(b"hi"); assert a.recv(2) == b"hi"
a.send(b"yo")
for _ in range(10):
    ev = ep.poll(5)
    assert ev, "no EPOLLIN"
    if ev[0][1] & select.EPOLLIN: break
assert c.recv(2) == b"yo"
# A handshake that cannot finish (nobody has 198.51.100.99): no EPOLLOUT meanwhile.
d = socket.socket(); d.setblocking(False)
ep.register(d.fileno(), select.EPOLLOUT | select.EPOLLIN)
assert d.connect_ex(("198.51.100.99", 80)) == errno.EINPROGRESS
assert ep.poll(0.5) == [], "EPOLLOUT before the connection exists"
assert d.connect_ex(("198.51.100.99", 80)) == errno.EALREADY
# select() sees the same.
r, w, x = select.select([d], [d], [d], 0.2)
assert (r, w, x) == ([], [], []), (r, w, x)
print("OK")
`)
}

func TestConnectRefused(t *testing.T) {
	python(t, `
import socket, select, errno
s = socket.socket()
try:
    s.connect(("198.51.100.1", 9))
    raise SystemExit("connected")
except ConnectionRefusedError:
    pass
s = socket.socket(socket.AF_INET6)
assert s.connect_ex(("2001:db8:198::1", 9)) == errno.ECONNREFUSED
s = socket.socket(); s.setblocking(False)
assert s.connect_ex(("198.51.100.1", 9)) == errno.EINPROGRESS
r, w, x = select.select([], [s], [], 5)
assert w == [s]
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
assert s.recv(10) == b""
# A failed socket can connect again, as on Linux, blocking or not.
s = socket.socket()
assert s.connect_ex(("198.51.100.1", 9300)) == errno.ECONNREFUSED
srv = socket.socket(); srv.bind(("198.51.100.1", 9300)); srv.listen()
assert s.connect_ex(("198.51.100.1", 9300)) == 0
a, _ = srv.accept(); s.sendall(b"again"); assert a.recv(5) == b"again"
n = socket.socket(); n.setblocking(False)
assert n.connect_ex(("198.51.100.1", 9301)) == errno.EINPROGRESS
select.select([], [n], [], 5)
assert n.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
assert n.connect_ex(("198.51.100.1", 9300)) == errno.EINPROGRESS
select.select([], [n], [], 5)
assert n.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
a, _ = srv.accept(); n.send(b"nb"); assert a.recv(2) == b"nb"
print("OK")
`)
	need(t, "curl")
	r := ztnc(t, time.Minute, onLocal("--", "curl", "-sS", "http://198.51.100.1:9/")...)
	if r.Code != 7 || !strings.Contains(r.Stderr, "Couldn't connect") {
		t.Fatalf("curl to a closed port: want exit 7, %s", r)
	}
	r = ztnc(t, time.Minute, onLocal("--", tcpprog, "echo", "198.51.100.1:9", "x")...)
	if r.Code != 1 || !strings.Contains(r.Stderr, "connection refused") {
		t.Fatalf("Go dial to a closed port: %s", r)
	}
}

// TestSocketNames checks every address a program can see, and the fixed socket options: the
// program must never see AF_UNIX.
func TestSocketNames(t *testing.T) {
	python(t, `
import socket, errno
s = socket.socket()
assert s.getsockname() == ("0.0.0.0", 0), s.getsockname()
try:
    s.getpeername(); raise SystemExit("getpeername on unconnected socket")
except OSError as e:
    assert e.errno == errno.ENOTCONN
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_INET
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == socket.IPPROTO_TCP
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("198.51.100.1", 0)); port = srv.getsockname()[1]; assert port > 0
srv.listen(5)
assert srv.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
assert srv.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
s.connect(("198.51.100.1", port))
a, peer = srv.accept()
assert peer == s.getsockname() and peer[0] == "198.51.100.1", (peer, s.getsockname())
assert s.getpeername() == ("198.51.100.1", port) == a.getsockname()
assert a.getpeername() == peer
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
# An option the stack does not model is accepted and remembered.
s.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, 3)
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY) == 3
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
assert info[0] == 1, info[0]  # tcpi_state: TCP_ESTABLISHED
# IPv6, and IPv4 peers on a dual-stack listener seen v4-mapped.
s6 = socket.socket(socket.AF_INET6)
assert s6.getsockname() == ("::", 0, 0, 0)
assert s6.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_INET6
srv6 = socket.socket(socket.AF_INET6); srv6.bind(("::", 0)); srv6.listen()
p6 = srv6.getsockname()[1]
s6.connect(("2001:db8:198::1", p6))
a6, peer6 = srv6.accept()
assert peer6[:2] == s6.getsockname()[:2] and peer6[0] == "2001:db8:198::1", (peer6, s6.getsockname())
assert s6.getpeername()[:2] == ("2001:db8:198::1", p6)
c4 = socket.socket(); c4.connect(("198.51.100.1", p6))
a4, peer4 = srv6.accept()
assert peer4[0] == "::ffff:198.51.100.1" and peer4[1] == c4.getsockname()[1], peer4
assert a4.getsockname()[:2] == ("::ffff:198.51.100.1", p6), a4.getsockname()
print("OK")
`)
}

// TestBlockingCallsAndSignals: a blocking accept held by the supervisor must let signals
// through like a native one: a handler without SA_RESTART makes it fail with EINTR, one with
// SA_RESTART lets it resume and still get its connection.
func TestBlockingCallsAndSignals(t *testing.T) {
	python(t, `
import socket, signal, threading, time
class Alarm(Exception): pass
def raise_alarm(*a): raise Alarm()
srv = socket.socket(); srv.bind(("198.51.100.1", 9100)); srv.listen()
signal.signal(signal.SIGALRM, raise_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.3)
try:
    srv.accept(); raise SystemExit("accept returned")
except Alarm:
    pass
fired = []
signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
signal.siginterrupt(signal.SIGALRM, False)  # SA_RESTART
signal.setitimer(signal.ITIMER_REAL, 0.2)
def dial():
    time.sleep(0.6)
    socket.create_connection(("198.51.100.1", 9100)).close()
threading.Thread(target=dial).start()
a, peer = srv.accept()
assert fired == [1], fired
# Blocking accept with SO_RCVTIMEO gives EAGAIN after the timeout.
srv.settimeout(None)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, (b"\x00" * 8) + (200000).to_bytes(8, "little"))
t = time.monotonic()
try:
    srv.accept(); raise SystemExit("accept returned")
except BlockingIOError:
    pass
assert time.monotonic() - t > 0.15
# With a timeout set, Linux never restarts an interrupted socket call, SA_RESTART or not: it
# fails with EINTR at the signal (restarted, a periodic signal would keep it waiting forever).
srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, (3).to_bytes(8, "little") + (b"\x00" * 8))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.51.100.1", 9101))
u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, (3).to_bytes(8, "little") + (b"\x00" * 8))
signal.signal(signal.SIGALRM, raise_alarm)
signal.siginterrupt(signal.SIGALRM, False)
for name, call in (("accept", srv.accept), ("recvfrom", lambda: u.recvfrom(100))):
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    t = time.monotonic()
    try:
        call(); raise SystemExit(name + " returned")
    except Alarm:
        pass
    assert time.monotonic() - t < 1.5, (name, "interrupted after", time.monotonic() - t)
print("OK")
`)
}

func TestExitCodes(t *testing.T) {
	need(t)
	dir := t.TempDir()
	// A program named like a ztnc-run subcommand still runs when it comes after "--".
	if err := os.WriteFile(filepath.Join(dir, "help"), []byte("#!/bin/sh\necho program-not-subcommand\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644)
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"exit 3", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"killed", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
		{"not found", []string{"no-such-program-ztnc"}, 127, ""},
		{"not executable", []string{filepath.Join(dir, "noexec")}, 126, ""},
		{"subcommand name", []string{"help"}, 0, "program-not-subcommand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ztnc(t, time.Minute, onLocal(append([]string{"--"}, tc.args...)...)...)
			if r.Code != tc.code || !strings.Contains(r.Stdout, tc.out) {
				t.Fatalf("want exit %d: %s", tc.code, r)
			}
			if tc.code >= 125 && tc.code <= 127 && (strings.Count(r.Stderr, "\n") != 1 || !strings.HasPrefix(r.Stderr, "ztnc-run: ")) {
				t.Fatalf("want one error line: %q", r.Stderr)
			}
		})
	}
	r := ztnc(t, time.Minute, "--local", "bogus", "--", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "--local") {
		t.Fatalf("bad --local: %s", r)
	}
}

// TestSignalForwarding: SIGTERM to ztnc-run reaches the program, whose exit status ztnc-run
// returns.
func TestSignalForwarding(t *testing.T) {
	need(t, "python3")
	cmd := exec.Command(ztncRun, onLocal("--", "python3", "-c", `
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
print("ready", flush=True)
time.sleep(60)
`)...)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("got %q", line)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("ztnc-run did not exit after SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Fatalf("exit %d, want 7", code)
	}
}

// TestHostSeesNothing: while a server listens on the virtual network, the host has no such
// listening socket and no such address.
func TestHostSeesNothing(t *testing.T) {
	need(t, "python3")
	cmd := exec.Command(ztncRun, onLocal("--", "python3", "-c", `
import socket, time
s = socket.socket(); s.bind(("198.51.100.1", 47123)); s.listen()
print("listening", flush=True)
time.sleep(60)
`)...)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "listening\n" {
		t.Fatalf("got %q", line)
	}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, _ := os.ReadFile(f)
		// A listening socket on port 47123: local_address ends in :B813 (hex), st is 0A.
		// (Connections of other programs may use the port as their own, and are not ours.)
		for _, line := range strings.Split(string(b), "\n") {
			if col := strings.Fields(line); len(col) > 3 && strings.HasSuffix(col[1], ":B813") && col[3] == "0A" {
				t.Fatalf("host %s shows a listener on port 47123: %s", f, line)
			}
		}
	}
	if b, _ := os.ReadFile("/proc/net/fib_trie"); strings.Contains(string(b), "198.51.100.1") {
		t.Fatal("host has address 198.51.100.1")
	}
}

// TestShutdownRead: shutting a socket down for reading ends reading only. A TCP connection goes
// on both ways when the peer sends more (it used to be reset); a UDP socket's shutdown wakes
// a thread blocked in a receive, the usual way to stop one.
func TestShutdownRead(t *testing.T) {
	python(t, `
import socket, threading, time, select, errno
A = "198.51.100.1"
# TCP: shutdown(SHUT_RD) ends reading only. A read returns end of file at once, and the
# connection goes on both ways when the peer sends again (the proxy used to reset it).
srv = socket.create_server((A, 9210)); c = socket.create_connection((A, 9210)); s, _ = srv.accept()
c.shutdown(socket.SHUT_RD)
assert c.recv(100) == b""
s.sendall(b"ignored"); time.sleep(0.2)
c.sendall(b"hello"); assert s.recv(100) == b"hello"
s.sendall(b"more"); time.sleep(0.2)
c.sendall(b"again"); assert s.recv(100) == b"again"
c.close(); s.close()
# UDP: shutdown wakes a thread blocked in a receive (returning 0), connected or not (then
# failing with ENOTCONN, as Linux's inet_shutdown does after marking the socket); receives
# return 0 at once from then on, and sends with an address fail with EPIPE.
for connected in (False, True):
    for use_from in (False, True):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((A, 0))
        if connected:
            u.connect((A, 9))
        got = []
        t = threading.Thread(target=lambda: got.append(u.recvfrom(100)[0] if use_from else u.recv(100)))
        t.start(); time.sleep(0.3)
        try:
            u.shutdown(socket.SHUT_RDWR); err = 0
        except OSError as e:
            err = e.errno
        t.join(10)
        assert not t.is_alive(), ("receiver still blocked", connected, use_from)
        assert got == [b""], got
        assert err == (0 if connected else errno.ENOTCONN), err
        assert u.recv(100) == b""
        assert select.select([u], [], [], 0)[0], "not readable after shutdown"
        try:
            u.sendto(b"x", (A, 9)); raise SystemExit("sendto after SHUT_WR sent")
        except OSError as e:
            assert e.errno == errno.EPIPE, e
        u.close()
# What was queued before SHUT_RD is still read; only reading is shut down.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((A, 0))
u.sendto(b"queued", u.getsockname()); time.sleep(0.2)
try:
    u.shutdown(socket.SHUT_RD)
except OSError as e:
    assert e.errno == errno.ENOTCONN, e
assert u.recvfrom(100)[0] == b"queued"
assert u.recv(100) == b""
u.sendto(b"still sends", (A, 9))
try:
    u.sendto(b"x", socket.MSG_OOB, (A, 9)); raise SystemExit("MSG_OOB sent")
except OSError as e:
    assert e.errno == errno.EOPNOTSUPP, e
print("OK")
`)
}

// TestFastOpenRefused: a TCP Fast Open connect (sendto or sendmsg with MSG_FASTOPEN) fails
// with EOPNOTSUPP, as on a host with Fast Open off, so that the program connects first; it
// used to fail with EISCONN from the socketpair, and the connection was never made.
func TestFastOpenRefused(t *testing.T) {
	python(t, `
import socket, errno
A = "198.51.100.1"
srv = socket.create_server((A, 9220))
for how in ("sendto", "sendmsg"):
    c = socket.socket()
    try:
        if how == "sendto":
            c.sendto(b"hello", socket.MSG_FASTOPEN, (A, 9220))
        else:
            c.sendmsg([b"hello"], [], socket.MSG_FASTOPEN, (A, 9220))
        raise SystemExit(how + " with MSG_FASTOPEN was taken")
    except OSError as e:
        assert e.errno == errno.EOPNOTSUPP, (how, e)
    c.connect((A, 9220)); c.sendall(b"hello")
    a, _ = srv.accept()
    assert a.recv(100) == b"hello"
    a.close(); c.close()
print("OK")
`)
}

// TestCloseAndShutdown: half-close each way, FIN on close, RST when a program closes with
// data unread, a peer's RST failing reads, EADDRINUSE, close-on-exec and non-blocking flags
// on new fds.
func TestCloseAndShutdown(t *testing.T) {
	python(t, `
import socket, os, errno, time, fcntl, select
srv = socket.socket(); srv.bind(("198.51.100.1", 9200)); srv.listen()
other = socket.socket()
try:
    other.bind(("198.51.100.1", 9200)); raise SystemExit("bound twice")
except OSError as e:
    assert e.errno == errno.EADDRINUSE, e
c = socket.create_connection(("198.51.100.1", 9200))
a, _ = srv.accept()
assert not os.get_inheritable(c.fileno()) and not os.get_inheritable(a.fileno())
# Half-close: the client stops sending, still receives.
c.sendall(b"request"); c.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = a.recv(100)
    if not d: break
    got += d
assert got == b"request", got
a.sendall(b"reply"); a.close()
got = b""
while True:
    d = c.recv(100)
    if not d: break
    got += d
assert got == b"reply", got
c.close()
# Close with unread data: the peer is reset.
c = socket.create_connection(("198.51.100.1", 9200))
a, _ = srv.accept()
c.sendall(b"never read")
assert select.select([a], [], [], 20)[0], "the data did not arrive"
a.close()
# The reset takes a moment to cross the stack (longer on a loaded machine): keep sending
# until the connection fails.
deadline = time.time() + 20
try:
    while time.time() < deadline:
        c.send(b"x"); time.sleep(0.05)
    raise SystemExit("no reset")
except (ConnectionResetError, BrokenPipeError):
    pass
# The peer resets (SO_LINGER {1, 0}): what arrived is read, then the read fails, as on Linux,
# instead of reading as a clean end of file. The error is taken once: by a read, or by
# SO_ERROR if that comes first (the read then sees end of file).
import struct
def reset_by_peer():
    c = socket.create_connection(("198.51.100.1", 9200))
    a, _ = srv.accept()
    a.sendall(b"partial")
    c.settimeout(20)
    got = b""
    while len(got) < 7:
        got += c.recv(100)
    assert got == b"partial", got
    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    a.close()
    assert select.select([c], [], [], 20)[0], "the reset did not arrive"
    return c
c = reset_by_peer()
try:
    d = c.recv(100)
    raise SystemExit("reset read as %r" % d)
except ConnectionResetError:
    pass
assert c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
c.close()
c = reset_by_peer()
e = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
assert e == errno.ECONNRESET, e
assert c.recv(100) == b""
c.close()
# accept4 with SOCK_NONBLOCK, through the raw call.
c = socket.create_connection(("198.51.100.1", 9200))
srv.setblocking(False)
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.accept4(srv.fileno(), None, None, socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
assert fd >= 0, ctypes.get_errno()
assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
fd2 = libc.accept4(srv.fileno(), None, None, 0)
assert fd2 == -1 and ctypes.get_errno() == errno.EAGAIN
os.close(fd)
print("OK")
`)
}

// TestOutOfFileDescriptors: ztnc-run keeps one fd per emulated socket, so with its limit as
// low as the program's it runs out first. The program's socket() then fails with EMFILE, as
// at its own limit, ztnc-run's stderr says why, and closed sockets make room again.
func TestOutOfFileDescriptors(t *testing.T) {
	need(t, "python3")
	prog := `
import errno, socket, time
socks = []
try:
    while True:
        socks.append(socket.socket())
except OSError as e:
    print("socket failed after", len(socks), errno.errorcode[e.errno])
for s in socks[:100]:
    s.close()
for i in range(100):
    try:
        ln = socket.socket(); ln.bind(("198.51.100.1", 0)); ln.listen()
        c = socket.create_connection(ln.getsockname()); a, _ = ln.accept()
        c.sendall(b"ping"); print("after closing:", a.recv(4).decode()); break
    except OSError:
        time.sleep(0.05)
`
	argv := append([]string{"sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, ztncRun}, onLocal("--", "python3", "-c", prog)...)
	r := lab.RunCmd(t, time.Minute, lab.Spec{Argv: argv})
	if r.Code != 0 {
		t.Fatalf("program failed: %s", r)
	}
	mustContain(t, r, "EMFILE", "after closing: ping")
	if !strings.Contains(r.Stderr, "out of file descriptors") || !strings.Contains(r.Stderr, "limit=256") {
		t.Fatalf("ztnc-run did not say it ran out of file descriptors:\n%s", r.Stderr)
	}
}
