package netstack

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// withParkAfter runs the test with sweeps every d.
func withParkAfter(t testing.TB, d time.Duration) {
	old := parkAfter
	parkAfter = d
	t.Cleanup(func() { parkAfter = old })
}

// withCrowdedLoops runs the test with stacks crowded past n loops on goroutines.
func withCrowdedLoops(t testing.TB, n int32) {
	old := crowdedLoops
	crowdedLoops = n
	t.Cleanup(func() { crowdedLoops = old })
}

var loopFrame = regexp.MustCompile(`netstack\.\(\*(splice|dgramSplice)\)\.to(Net|Unix)`)

// spliceLoops counts the goroutines running a loop of a spliced socket (TCP or datagram).
func spliceLoops() int {
	buf := make([]byte, 4<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if loopFrame.MatchString(g) {
			n++
		}
	}
	return n
}

func waitLoops(t *testing.T, atMost int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for spliceLoops() > atMost {
		if time.Now().After(deadline) {
			t.Fatalf("%d splice loops still on goroutines, want at most %d", spliceLoops(), atMost)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// splicedConns opens conns connections from n.a to l on n.b, spliced at both ends, and
// returns the programs' ends.
func splicedConns(t *testing.T, n *testNet, l *TCPEndpoint, conns int) (clients, servers []*net.UnixConn) {
	t.Helper()
	for range conns {
		cep := dialTCP(t, n.a, false, l.LocalAddr())
		sep := acceptTCP(t, l)
		clients, servers = append(clients, spliceConn(t, cep)), append(servers, spliceConn(t, sep))
	}
	return clients, servers
}

// TestSpliceParksIdleConnections: idle connections give back their goroutines, and every one
// of them still carries data both ways, sees either side's end of file, and stops with the
// stack.
func TestSpliceParksIdleConnections(t *testing.T) {
	withParkAfter(t, 20*time.Millisecond)
	const conns = 50
	n := newNet(t)
	l := listenTCP(t, n.b, ap("192.0.2.2:80"))
	type pair struct {
		client, server *net.UnixConn
		cep, sep       *TCPEndpoint
	}
	var ps []pair
	for range conns {
		cep := dialTCP(t, n.a, false, ap("192.0.2.2:80"))
		sep := acceptTCP(t, l)
		ps = append(ps, pair{spliceConn(t, cep), spliceConn(t, sep), cep, sep})
	}
	for i, p := range ps {
		p.client.Write([]byte{byte(i)})
		readAllN(t, p.server, 1)
	}
	waitLoops(t, 0)
	for _, s := range []*Stack{n.a, n.b} {
		if c := s.Counters(); c.LoopsParked != 2*conns || c.Parks < 2*conns {
			t.Fatalf("counters: %d loops parked (want %d), %d parks", c.LoopsParked, 2*conns, c.Parks)
		}
	}

	roundTrip := func(i int, p pair) {
		t.Helper()
		req, resp := []byte(fmt.Sprintf("request %d", i)), bytes.Repeat([]byte{byte(i)}, 100<<10)
		if _, err := p.client.Write(req); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(req))
		p.server.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p.server, got); err != nil || !bytes.Equal(got, req) {
			t.Fatalf("conn %d: server read %q, %v", i, got, err)
		}
		go p.server.Write(resp)
		back := make([]byte, len(resp))
		p.client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p.client, back); err != nil || !bytes.Equal(back, resp) {
			t.Fatalf("conn %d: client read %d bytes, %v, or they differ", i, len(back), err)
		}
	}
	for i, p := range ps {
		roundTrip(i, p)
	}
	waitLoops(t, 0) // and they park again
	for i, p := range ps {
		roundTrip(i, p)
	}
	waitLoops(t, 0)

	// A third end from the client while parked, a third from the server (the peer's FIN
	// wakes the parked toUnix): the other side reads end of file.
	for i, p := range ps[:2*conns/3] {
		first, second := p.client, p.server
		if i >= conns/3 {
			first, second = p.server, p.client
		}
		first.Close()
		if got, err := readAll(t, second, 5*time.Second); err != nil || len(got) != 0 {
			t.Fatalf("conn %d: read %q, %v; want end of file", i, got, err)
		}
		second.Close()
		waitDone(t, p.cep)
		waitDone(t, p.sep)
	}
	waitLoops(t, 0)
	// The rest are parked when the stacks close.
	n.a.Close()
	n.b.Close()
	for _, p := range ps[2*conns/3:] {
		waitDone(t, p.cep)
		waitDone(t, p.sep)
	}
	if got := spliceLoops(); got != 0 {
		t.Errorf("%d splice loops left after the stacks closed", got)
	}
}

// runParking runs tests twice with loops parking throughout: with a sweep every millisecond,
// and on crowded stacks, where every loop parks at its first wait.
func runParking(t *testing.T, tests map[string]func(*testing.T)) {
	modes := []struct {
		name string
		set  func(*testing.T)
	}{
		{"Sweeps", func(t *testing.T) { withParkAfter(t, time.Millisecond) }},
		{"Crowded", func(t *testing.T) { withCrowdedLoops(t, -1) }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			m.set(t)
			for name, test := range tests {
				t.Run(name, test)
			}
		})
	}
}

// TestSpliceSuiteParking runs the splice tests with loops parking throughout.
func TestSpliceSuiteParking(t *testing.T) {
	runParking(t, map[string]func(*testing.T){
		"HalfClose":                TestSpliceHalfClose,
		"ResetHalfOpen":            TestSpliceResetHalfOpen,
		"CloseUnreadAfterShutdown": TestSpliceCloseUnreadAfterShutdown,
		"Reset":                    TestSpliceReset,
		"Errors":                   TestSpliceErrors,
		"LargeTransfer":            TestSpliceLargeTransfer,
		"Backpressure":             TestSpliceBackpressure,
		"StackClose":               TestSpliceStackClose,
		"LingerZero":               TestSpliceLingerZero,
		"Chaos":                    TestSpliceChaos,
		"OnDone":                   TestSpliceOnDone,
		"CorkPushedAtEnd":          TestCorkPushedAtEnd,
	})
}

// TestSpliceColdLoopsParkAtOnce: loops woken after a park of a whole sweep park again as soon
// as they would wait, and loops woken again soon after that wait on their goroutines.
func TestSpliceColdLoopsParkAtOnce(t *testing.T) {
	const sweep = time.Second
	withParkAfter(t, sweep)
	const conns = 10
	n := newNet(t)
	l := listenTCP(t, n.b, ap("192.0.2.2:80"))
	clients, servers := splicedConns(t, n, l, conns)
	exchange := func() {
		t.Helper()
		for i := range conns {
			clients[i].Write([]byte("ping"))
			readAllN(t, servers[i], 4)
			servers[i].Write([]byte("pong"))
			readAllN(t, clients[i], 4)
		}
	}
	parked := func() uint64 { return n.a.Counters().LoopsParked + n.b.Counters().LoopsParked }
	waitParked := func(deadline time.Time) {
		t.Helper()
		for parked() != 4*conns {
			if time.Now().After(deadline) {
				t.Fatalf("%d loops parked, want %d", parked(), 4*conns)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	exchange()
	waitParked(time.Now().Add(2*sweep + 5*time.Second))
	time.Sleep(sweep) // every park has now lasted a sweep
	start := time.Now()
	exchange()
	// Parking the ordinary way takes a woken loop two sweeps, the second no sooner than a
	// sweep after its wake-up.
	waitParked(start.Add(sweep * 3 / 4))

	exchange() // soon after: every loop is busy again
	if got, loops := parked(), spliceLoops(); got != 0 || loops != 4*conns {
		t.Fatalf("after a second exchange %d loops parked and %d on goroutines; want 0 and %d", got, loops, 4*conns)
	}
}

// TestCrowdedStackParksAtOnce: past crowdedLoops loops on goroutines, a stack's new loops
// park at their first wait and at every wait after a wake-up, however short their park; every
// connection still carries data both ways, and once the crowd has gone a new connection's
// loops keep their goroutines.
func TestCrowdedStackParksAtOnce(t *testing.T) {
	withParkAfter(t, time.Hour) // no sweep: only crowding parks
	const crowd, conns = 6, 20
	withCrowdedLoops(t, crowd)
	n := newNet(t)
	l := listenTCP(t, n.b, ap("192.0.2.2:80"))
	clients, servers := splicedConns(t, n, l, conns)
	// Each stack: the loops that started before it was crowded keep their goroutines (at
	// most crowd+2: a connection's two start together), and every other loop parks.
	settled := func(when string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			a, b := n.a.Counters(), n.b.Counters()
			ok := true
			for _, c := range []Counters{a, b} {
				ok = ok && c.LoopsRunning <= crowd+2 && c.LoopsParked+c.LoopsRunning == 2*conns
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: a has %d loops on goroutines and %d parked, b %d and %d; want at most %d on goroutines of %d",
					when, a.LoopsRunning, a.LoopsParked, b.LoopsRunning, b.LoopsParked, crowd+2, 2*conns)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	settled("opened")
	for round := range 3 {
		for i := range conns {
			msg := []byte(fmt.Sprintf("ping %d %d", round, i))
			for _, c := range [][2]*net.UnixConn{{clients[i], servers[i]}, {servers[i], clients[i]}} {
				c[0].Write(msg)
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c[1], got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("connection %d read %q (%v), want %q", i, got, err, msg)
				}
			}
		}
		settled(fmt.Sprintf("after exchange %d", round))
	}
	for i := range conns {
		clients[i].Close()
		servers[i].Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for n.a.Counters().LoopsRunning+n.b.Counters().LoopsRunning+n.a.Counters().LoopsParked+n.b.Counters().LoopsParked != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("closed connections left loops: %+v %+v", n.a.Counters(), n.b.Counters())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cep := dialTCP(t, n.a, false, ap("192.0.2.2:80"))
	client, server := spliceConn(t, cep), spliceConn(t, acceptTCP(t, l))
	client.Write([]byte("x"))
	readAllN(t, server, 1)
	time.Sleep(50 * time.Millisecond)
	if c := n.a.Counters(); c.LoopsRunning != 2 || c.LoopsParked != 0 {
		t.Fatalf("uncrowded stack: %d loops on goroutines and %d parked, want 2 and 0", c.LoopsRunning, c.LoopsParked)
	}
}

// TestSpliceParksBlockedWriters: a program that writes faster than its peer reads blocks,
// and the proxy's loop that waits for room in the send buffer parks (keeping only the bytes
// it holds); when the peer reads, every byte arrives in order.
func TestSpliceParksBlockedWriters(t *testing.T) {
	withParkAfter(t, 20*time.Millisecond)
	const conns = 4
	n := newNet(t)
	l := listenTCP(t, n.b, ap("192.0.2.2:80"))
	clients, servers := splicedConns(t, n, l, conns)
	sums := make([][32]byte, conns)
	for i, c := range clients {
		h := sha256.New()
		chunk := make([]byte, 64<<10)
		for k := 0; ; k++ {
			rand.Read(chunk)
			c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			m, err := c.Write(chunk)
			h.Write(chunk[:m])
			if err != nil {
				break
			}
			if k > 4096 {
				t.Fatal("writer never blocked")
			}
		}
		c.SetWriteDeadline(time.Time{})
		c.CloseWrite()
		sums[i] = [32]byte(h.Sum(nil))
	}
	// a's loops: toUnix waits for input, toNet for room to write; b's toNet waits for input
	// (its toUnix waits for the program to read, and does not park).
	deadline := time.Now().Add(5 * time.Second)
	for n.a.Counters().LoopsParked != 2*conns || n.b.Counters().LoopsParked != conns {
		if time.Now().After(deadline) {
			t.Fatalf("a has %d loops parked, b %d; want %d and %d", n.a.Counters().LoopsParked, n.b.Counters().LoopsParked, 2*conns, conns)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, s := range servers {
		h := sha256.New()
		if _, err := io.Copy(h, s); err != nil {
			t.Fatal(err)
		}
		if [32]byte(h.Sum(nil)) != sums[i] {
			t.Fatalf("connection %d: the server read other bytes than the client wrote", i)
		}
	}
}

// TestDatagramSpliceParks: idle UDP sockets give back their goroutines, and every one still
// carries datagrams both ways and an ICMP error, and ends with the program's close or the
// stack's.
func TestDatagramSpliceParks(t *testing.T) {
	withParkAfter(t, 20*time.Millisecond)
	const socks = 20
	n := newNet(t)
	srv := newUDP(t, n.b, false, "0.0.0.0:5000")
	srv.SetAddressHeaders(true)
	srvProg := seqpacketPair(t, srv)
	var clis []*DatagramEndpoint
	var progs []*os.File
	for range socks {
		c := newUDP(t, n.a, false, "")
		if err := c.Connect(ap("192.0.2.2:5000")); err != nil {
			t.Fatal(err)
		}
		clis, progs = append(clis, c), append(progs, seqpacketPair(t, c))
	}
	waitParked := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			a, b := n.a.Counters().LoopsParked, n.b.Counters().LoopsParked
			if a == 2*socks && b == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("loops parked: %d and %d, want %d and 2", a, b, 2*socks)
			}
			time.Sleep(5 * time.Millisecond)
		}
		waitLoops(t, 0)
	}
	waitParked()

	for round := range 2 {
		for i, p := range progs {
			req := []byte(fmt.Sprintf("request %d.%d", round, i))
			if _, err := p.Write(req); err != nil {
				t.Fatal(err)
			}
			got := readMsg(t, srvProg)
			h, err := DecodeDatagramHeader(got)
			if err != nil || !bytes.Equal(got[DatagramHeaderLen:], req) || h.Remote.Port() != clis[i].LocalAddr().Port() {
				t.Fatalf("socket %d: server got %q from %v (%v)", i, got, h.Remote, err)
			}
			resp := bytes.Repeat([]byte{byte(i)}, 1000*i)
			if _, err := srv.WriteTo(resp, h.Remote); err != nil {
				t.Fatal(err)
			}
			if got := readMsg(t, p); !bytes.Equal(got, resp) {
				t.Fatalf("socket %d: got %d bytes back, want %d", i, len(got), len(resp))
			}
		}
		waitParked() // and they park again
	}

	// The server's program closes: a parked client's datagram draws a port unreachable,
	// which wakes its parked toUnix with an error marker.
	srvProg.Close()
	<-srv.Done()
	progs[0].Write([]byte("anyone?"))
	if got := readMsg(t, progs[0]); len(got) != 0 {
		t.Fatalf("after a port unreachable the program read %q, want the empty error marker", got)
	}
	if err := clis[0].SoError(); err != syscall.ECONNREFUSED {
		t.Fatalf("SO_ERROR %v, want ECONNREFUSED", err)
	}

	// Half of them end with the program's close while parked, the rest with the stack's.
	waitLoops(t, 0)
	for i, p := range progs[:socks/2] {
		p.Close()
		select {
		case <-clis[i].Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("socket %d: not released after the program closed it while parked", i)
		}
	}
	n.a.Close()
	for i, c := range clis[socks/2:] {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("socket %d: not released by the stack's close while parked", socks/2+i)
		}
	}
	if got := spliceLoops(); got != 0 {
		t.Errorf("%d loops left after the stack closed", got)
	}
}

// TestDatagramSuiteParking runs the datagram splice tests with loops parking throughout.
func TestDatagramSuiteParking(t *testing.T) {
	runParking(t, map[string]func(*testing.T){
		"UDPExchange":             TestUDPExchange,
		"UDPSplice":               TestUDPSplice,
		"UDPConnectionRefused":    TestUDPConnectionRefused,
		"Ping":                    TestPing,
		"ReadQueued":              TestReadQueued,
		"Deliver":                 TestDeliver,
		"DatagramSpliceLifecycle": TestDatagramSpliceLifecycle,
	})
}

// TestColdLoopsWaitWhenParkerFails: when the stack's epoll set fails, the parked toNet loops
// run again and wait on their goroutines; cold ones must not retry parking in a busy loop.
func TestColdLoopsWaitWhenParkerFails(t *testing.T) {
	const sweep = 20 * time.Millisecond
	withParkAfter(t, sweep)
	const conns = 5
	n := newNet(t)
	l := listenTCP(t, n.b, ap("192.0.2.2:80"))
	clients, servers := splicedConns(t, n, l, conns)
	for i := range conns {
		clients[i].Write([]byte{1})
		readAllN(t, servers[i], 1)
	}
	waitLoops(t, 0)
	time.Sleep(2 * sweep) // the parks last long enough for the loops to wake cold

	netWakes := func() (sum uint32) {
		n.a.mu.Lock()
		defer n.a.mu.Unlock()
		for p := range n.a.running {
			sum += p.(*splice).netLoop.wakes.Load()
		}
		return sum
	}
	p := &n.a.parker
	p.mu.Lock()
	set := p.set
	p.mu.Unlock()
	set.Close() // as if it failed: its loop ends and runs every parked toNet
	time.Sleep(50 * time.Millisecond)
	before := netWakes()
	time.Sleep(100 * time.Millisecond)
	// The sweeps still nudge them (a wake-up every other sweep); a loop that retried parking
	// would wake thousands of times.
	if d := netWakes() - before; d > 500 {
		t.Fatalf("toNet loops woke %d times in 100 ms with nothing to read", d)
	}
	for i := range conns { // and they still carry data
		clients[i].Write([]byte{2})
		readAllN(t, servers[i], 1)
	}
}

// TestSpliceParksHalfOpenConnections: connections whose peer has finished sending, while the
// program keeps its socket open (a pooled connection that the server closed), park both
// loops; the peer's reset still reaches the program at once.
// halfClosed opens conns connections from stack a to a listener on b, splices their client
// ends, and has each half-closed by shutdown (the client's program or the server's endpoint).
func halfClosed(t *testing.T, n *testNet, conns int, shutdown func(client *net.UnixConn, sep *TCPEndpoint)) (clients []*net.UnixConn, ceps, seps []*TCPEndpoint) {
	l := listenTCP(t, n.b, ap("192.0.2.2:80"))
	for range conns {
		cep := dialTCP(t, n.a, false, ap("192.0.2.2:80"))
		sep := acceptTCP(t, l)
		client := spliceConn(t, cep)
		shutdown(client, sep)
		clients, ceps, seps = append(clients, client), append(ceps, cep), append(seps, sep)
	}
	return clients, ceps, seps
}

// waitParked waits until s has want loops parked.
func waitParked(t *testing.T, s *Stack, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Counters().LoopsParked != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d loops parked, want %d", s.Counters().LoopsParked, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSpliceParksHalfOpenConnections(t *testing.T) {
	withParkAfter(t, 20*time.Millisecond)
	const conns = 10
	n := newNet(t)
	clients, ceps, seps := halfClosed(t, n, conns, func(_ *net.UnixConn, sep *TCPEndpoint) {
		sep.ep.Shutdown(tcpip.ShutdownWrite)
	})
	for i, c := range clients {
		if got, err := readAll(t, c, 5*time.Second); err != nil || len(got) != 0 {
			t.Fatalf("client %d read %q, %v; want end of file", i, got, err)
		}
	}
	waitParked(t, n.a, 2*conns)
	for i, c := range clients {
		seps[i].Abort()
		checkResetHalfOpen(t, c, ceps[i])
	}
}

// A program that has shut down writing and keeps its end open (a client waiting for a long
// answer) waits for its close parked too: the peer's answer still reaches it, and its close
// still ends the connection.
func TestSpliceParksHalfClosedPrograms(t *testing.T) {
	withParkAfter(t, 20*time.Millisecond)
	const conns = 10
	n := newNet(t)
	clients, ceps, seps := halfClosed(t, n, conns, func(client *net.UnixConn, _ *TCPEndpoint) {
		if err := client.CloseWrite(); err != nil {
			t.Fatal(err)
		}
	})
	for _, sep := range seps {
		waitEvents(t, sep, EventIn, 5*time.Second) // the FIN
	}
	waitParked(t, n.a, 2*conns)
	for i, c := range clients {
		answer := fmt.Sprintf("answer %d", i)
		if _, err := seps[i].ep.Write(strings.NewReader(answer), tcpip.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(answer))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != answer {
			t.Fatalf("client %d read %q, %v", i, got, err)
		}
		c.Close()
		waitDone(t, ceps[i])
		if err := ceps[i].Err(); err != nil {
			t.Fatalf("client %d: orderly close reported %v", i, err)
		}
	}
}
