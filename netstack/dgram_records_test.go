package netstack

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestReadQueued mixes native reads of the program's end with ReadQueued: every datagram read
// through ReadQueued comes with the header of exactly that datagram.
func TestReadQueued(t *testing.T) {
	n := newNet(t)
	srv := newUDP(t, n.b, false, "0.0.0.0:5000")
	prog := seqpacketPair(t, srv)
	pfd := int(prog.Fd())
	clients := []*DatagramEndpoint{newUDP(t, n.a, false, ""), newUDP(t, n.a, false, ""), newUDP(t, n.a, false, "")}
	payloads := []string{"first", "", "third", "fourth"}
	from := []int{0, 1, 2, 0}
	for i, p := range payloads {
		if _, err := clients[from[i]].WriteTo([]byte(p), ap("192.0.2.2:5000")); err != nil {
			t.Fatal(err)
		}
		// Wait for delivery so that the order is fixed.
		deadline := time.Now().Add(5 * time.Second)
		for {
			srv.spliced.Load().recs.mu.Lock()
			got := len(srv.spliced.Load().recs.q)
			srv.spliced.Load().recs.mu.Unlock()
			if got == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("datagram %d not delivered", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	buf := make([]byte, 3)
	// Native read of the first datagram: the supervisor does not see it.
	if m := readMsg(t, prog); string(m) != "first" {
		t.Fatalf("native read %q", m)
	}
	check := func(peek bool, want string, client int) {
		t.Helper()
		nb, total, h, known, err := srv.ReadQueued(pfd, buf, peek)
		if err != nil || !known {
			t.Fatalf("ReadQueued: %v known=%v", err, known)
		}
		if total != len(want) || string(buf[:nb]) != want[:min(len(want), 3)] {
			t.Fatalf("got %q (total %d), want %q", buf[:nb], total, want)
		}
		if h.Remote.Port() != clients[client].LocalAddr().Port() || h.Remote.Addr().String() != "192.0.2.1" {
			t.Fatalf("header %v, want client %d at %v", h.Remote, client, clients[client].LocalAddr())
		}
		if h.Local.String() != "192.0.2.2" {
			t.Fatalf("local %v", h.Local)
		}
	}
	check(true, "", 1)
	check(false, "", 1)
	// Peek, then a native read of "third", then ReadQueued sees "fourth" from client 0.
	check(true, "third", 2)
	if m := readMsg(t, prog); string(m) != "third" {
		t.Fatalf("native read %q", m)
	}
	check(false, "fourth", 0)
	if _, _, _, _, err := srv.ReadQueued(pfd, buf, false); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("empty queue: %v", err)
	}
}

// TestDeliver: datagrams from outside the stack reach the program in order with the stack's,
// with their headers.
func TestDeliver(t *testing.T) {
	n := newNet(t)
	srv := newUDP(t, n.b, false, "0.0.0.0:5000")
	if err := srv.Deliver(DatagramHeader{}, nil); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("Deliver before Splice: %v", err)
	}
	prog := seqpacketPair(t, srv)
	host := DatagramHeader{Remote: ap("198.51.100.7:53")}
	if err := srv.Deliver(host, []byte("from the host")); err != nil {
		t.Fatal(err)
	}
	cli := newUDP(t, n.a, false, "")
	cli.WriteTo([]byte("from the stack"), ap("192.0.2.2:5000"))
	rc, _ := prog.SyscallConn()
	var pfd int
	rc.Control(func(fd uintptr) { pfd = int(fd) })
	buf := make([]byte, 100)
	nb, _, h, known, err := srv.ReadQueued(pfd, buf, false)
	if err != nil || !known || string(buf[:nb]) != "from the host" || h.Remote != host.Remote {
		t.Fatalf("first: %q %v known=%v %v", buf[:nb], h.Remote, known, err)
	}
	if m := readMsg(t, prog); string(m) != "from the stack" {
		t.Fatalf("second: %q", m)
	}
	srv.SetAddressHeaders(true)
	srv.Deliver(host, []byte("x"))
	m := readMsg(t, prog)
	if h, err := DecodeDatagramHeader(m); err != nil || h.Remote != host.Remote || string(m[DatagramHeaderLen:]) != "x" {
		t.Fatalf("in-band: %v %v %q", h.Remote, err, m)
	}
}
