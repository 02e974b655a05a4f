package host

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// halfCloseServer is a program that, for each connection on PORT, reads until end of file,
// then answers with the peer address it sees, the byte count and the SHA-256 of what it read,
// and closes: it only answers if the client's half-close reached it while its own direction
// stayed open.
const halfCloseServer = `import hashlib, socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
while True:
    c, peer = s.accept()
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        h.update(b)
        n += len(b)
    c.sendall(("%s %d %s\n" % (peer[0], n, h.hexdigest())).encode())
    c.close()
`

// TestPublishTCP: -p forwards host TCP connections to the program's listener on the virtual
// network: curl on the host fetches from a server; a large upload with a half-close gets
// its answer on the still-open direction (the data intact end to end); the program sees the
// stack's own address as the peer; a port nobody listens on resets the host connection.
func TestPublishTCP(t *testing.T) {
	need(t, "python3", "curl")
	web, echo, idle, v6, health := lab.FreePort(t), lab.FreePort(t), lab.FreePort(t), lab.FreePort(t), lab.FreePort(t)
	dir := t.TempDir()
	os.WriteFile(dir+"/index.html", []byte("published\n"), 0o644)
	script := `python3 -m http.server -d ` + dir + ` 8080 >/dev/null 2>&1 &
python3 -c "$SERVER" 9000 &
wait`
	p := ztnc(t, "publisher", []string{"SERVER=" + halfCloseServer}, "--local", "198.51.100.1/24",
		"-p", fmt.Sprintf("127.0.0.1:%d:8080", web), "--publish", fmt.Sprintf("127.0.0.1:%d:9000/tcp", echo),
		"-p", fmt.Sprintf("127.0.0.1:%d:9999", idle), "-p", fmt.Sprintf("[::1]:%d:8080", v6),
		"--health", fmt.Sprintf("127.0.0.1:%d", health), "--", "sh", "-c", script)
	waitFor(t, p, "the servers", 30*time.Second, func() error {
		if !strings.Contains(p.Stdout.String(), "listening") {
			return fmt.Errorf("not yet")
		}
		r := lab.RunCmd(t, 10*time.Second, lab.Spec{Argv: []string{"curl", "-fsS", fmt.Sprintf("http://127.0.0.1:%d/index.html", web)}})
		if r.Stdout != "published\n" {
			return fmt.Errorf("curl: %s", r)
		}
		return nil
	})
	if r := lab.RunCmd(t, 10*time.Second, lab.Spec{Argv: []string{"curl", "-fsS", fmt.Sprintf("http://[::1]:%d/index.html", v6)}}); r.Stdout != "published\n" {
		t.Errorf("curl over IPv6 on the host: %s", r)
	}

	// 32 MiB up, half-close, answer down: more than every buffer on the way holds.
	data := make([]byte, 32<<20)
	rand.Read(data)
	sum := sha256.Sum256(data)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", echo))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if n, err := c.Write(data); err != nil {
		t.Fatalf("upload stalled after %d of %d bytes: %v", n, len(data), err)
	}
	c.(*net.TCPConn).CloseWrite()
	answer, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("answer after half-close: %v", err)
	}
	want := fmt.Sprintf("198.51.100.1 %d %s\n", len(data), hex.EncodeToString(sum[:]))
	if string(answer) != want && string(answer) != "::ffff:"+want {
		t.Errorf("answer %q, want %q (the peer is the stack's own address)", answer, want)
	}

	// Nobody listens on 9999: the host connection is reset, not left hanging. (The reset can
	// come before Dial has looked at the socket's error: then Dial reports it.)
	c2, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", idle))
	if err == nil {
		c2.SetDeadline(time.Now().Add(10 * time.Second))
		if n, err := c2.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("connection to a port without listener: read %d, %v; want reset or end of file", n, err)
		}
		c2.Close()
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}

	m := scrape(t, fmt.Sprintf("http://127.0.0.1:%d", health))
	label := fmt.Sprintf(`proto="tcp",host="127.0.0.1:%d",vport="9000"`, echo)
	if v := m.value(t, `ztnc_published_bytes_total{`+label+`,direction="in"}`); v != float64(len(data)) {
		t.Errorf("bytes in %v, want %d", v, len(data))
	}
	if v := m.value(t, `ztnc_published_forwarded_total{`+label+`}`); v != 1 {
		t.Errorf("forwarded %v, want 1", v)
	}
	if v := m.value(t, fmt.Sprintf(`ztnc_published_drops_total{proto="tcp",host="127.0.0.1:%d",vport="9999",reason="refused"}`, idle)); v != 1 {
		t.Errorf("refused %v, want 1", v)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A taken host port stops ztnc-run before the program starts.
func TestPublishPortInUse(t *testing.T) {
	need(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	r := runZtnc(t, 30*time.Second, nil, "--local", "198.51.100.1/24", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--", "sh", "-c", "echo ran")
	want := fmt.Sprintf("ztnc-run: --publish 127.0.0.1:%d->80/tcp: listen tcp 127.0.0.1:%d: bind: address already in use\n", port, port)
	if r.Code != 125 || r.Stderr != want || r.Stdout != "" {
		t.Errorf("want exit 125 and %q\n%s", want, r)
	}
}

// udpEchoServer answers each datagram on PORT with "PEER-ADDRESS PEER-PORT DATA".
const udpEchoServer = `import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.51.100.1", int(sys.argv[1])))
print("listening", flush=True)
while True:
    b, peer = s.recvfrom(65535)
    s.sendto(("%s %d " % peer).encode() + b, peer)
`

// TestPublishUDP: -p .../udp forwards each host client's datagrams to the program's socket
// through a flow of its own (its own source port on the virtual network), and the program's
// answers back to that client.
func TestPublishUDP(t *testing.T) {
	need(t, "python3")
	port := lab.FreePort(t)
	p := ztnc(t, "publisher", []string{"SERVER=" + udpEchoServer}, "--local", "198.51.100.1/24",
		"-p", fmt.Sprintf("127.0.0.1:%d:5353/udp", port), "--", "sh", "-c", `exec python3 -c "$SERVER" 5353`)
	waitFor(t, p, "the server", 30*time.Second, func() error {
		if !strings.Contains(p.Stdout.String(), "listening") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	seen := map[string]bool{}
	for i := range 2 {
		c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for j := range 3 {
			msg := fmt.Sprintf("client %d datagram %d", i, j)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte(msg))
			buf := make([]byte, 2048)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("%s: %v", msg, err)
			}
			line := string(buf[:n])
			f := strings.SplitN(line, " ", 3)
			if len(f) != 3 || f[0] != "198.51.100.1" || f[2] != msg {
				t.Fatalf("answer %q to %q", line, msg)
			}
			if _, err := strconv.Atoi(f[1]); err != nil {
				t.Fatalf("answer %q", line)
			}
			seen[fmt.Sprint(i)+" "+f[1]] = true
		}
	}
	// One flow (one source port) per client.
	ports := map[string]bool{}
	for k := range seen {
		ports[strings.Fields(k)[1]] = true
	}
	if len(seen) != 2 || len(ports) != 2 {
		t.Errorf("client/port pairs %v: want one port per client", seen)
	}
}
