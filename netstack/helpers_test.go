package netstack

import (
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/refs"
)

// TestMain runs every test with gVisor's reference leak checker in panic mode: a
// PacketBuffer or buffer chunk leaked by the link code fails the run. Benchmark runs leave it
// off: it records every reference-counted object and costs ~10% of the throughput.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		refs.SetLeakMode(refs.LeaksPanic)
	}
	code := m.Run()
	refs.DoLeakCheck()
	os.Exit(code)
}

const testMTU = 2800

var (
	addrA4 = netip.MustParsePrefix("192.0.2.1/24")
	addrB4 = netip.MustParsePrefix("192.0.2.2/24")
	addrA6 = netip.MustParsePrefix("2001:db8::1/64")
	addrB6 = netip.MustParsePrefix("2001:db8::2/64")
)

type testNet struct {
	hub          *Hub
	a, b         *Stack
	portA, portB *HubPort
}

func testMAC(n byte) [6]byte { return [6]byte{0x02, 0, 0, 0, 0, n} }

func newStackPort(t testing.TB, hub *Hub, n byte, cfg Config, addrs ...netip.Prefix) (*Stack, *HubPort) {
	t.Helper()
	port := hub.NewPort(testMAC(n), testMTU)
	s, err := New(port, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		port.Close()
		// Every loop that started has finished, and counted its end.
		if n := s.parker.running.Load(); n != 0 {
			t.Errorf("closed stack still counts %d loops on goroutines", n)
		}
	})
	if err := s.SetAddresses(addrs); err != nil {
		t.Fatal(err)
	}
	return s, port
}

// newNet returns two stacks on one hub: a (192.0.2.1, 2001:db8::1) and b (.2, ::2).
func newNet(t testing.TB) *testNet {
	return newNetConfig(t, Config{})
}

func newNetConfig(t testing.TB, cfg Config) *testNet {
	t.Helper()
	n := &testNet{hub: NewHub()}
	n.a, n.portA = newStackPort(t, n.hub, 1, cfg, addrA4, addrA6)
	n.b, n.portB = newStackPort(t, n.hub, 2, cfg, addrB4, addrB6)
	return n
}

type pollable interface {
	Readiness(Events) Events
	Notify(Events, func(Events)) func()
}

// waitEvents waits until one of mask holds on ep.
func waitEvents(t testing.TB, ep pollable, mask Events, timeout time.Duration) Events {
	t.Helper()
	ch := make(chan struct{}, 1)
	cancel := ep.Notify(mask, func(Events) {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	defer cancel()
	deadline := time.After(timeout)
	for {
		if ev := ep.Readiness(mask); ev != 0 {
			return ev
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no event %#x within %v", mask, timeout)
		}
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// listenTCP returns an endpoint listening on addr.
func listenTCP(t testing.TB, s *Stack, addr netip.AddrPort) *TCPEndpoint {
	t.Helper()
	return listenTCPBacklog(t, s, addr, 128)
}

// listenTCPBacklog returns an endpoint listening on addr with backlog.
func listenTCPBacklog(t testing.TB, s *Stack, addr netip.AddrPort, backlog int) *TCPEndpoint {
	t.Helper()
	l, err := s.NewTCP(addr.Addr().Is6() && !addr.Addr().Is4In6())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.Bind(addr); err != nil {
		t.Fatalf("bind %s: %v", addr, err)
	}
	if err := l.Listen(backlog); err != nil {
		t.Fatal(err)
	}
	return l
}

// connectTCP connects to remote and waits for the outcome, which it returns (0 when
// connected).
func connectTCP(t testing.TB, s *Stack, v6 bool, remote netip.AddrPort) (*TCPEndpoint, syscall.Errno) {
	t.Helper()
	c, err := s.NewTCP(v6)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	err = c.Connect(remote)
	if !errors.Is(err, syscall.EINPROGRESS) {
		if err == nil {
			return c, 0
		}
		return c, err.(syscall.Errno)
	}
	waitEvents(t, c, EventOut|EventErr|EventHUp, 20*time.Second)
	return c, c.SoError()
}

func dialTCP(t testing.TB, s *Stack, v6 bool, remote netip.AddrPort) *TCPEndpoint {
	t.Helper()
	c, e := connectTCP(t, s, v6, remote)
	if e != 0 {
		t.Fatalf("connect %s: %v", remote, e)
	}
	return c
}

func acceptTCP(t testing.TB, l *TCPEndpoint) *TCPEndpoint {
	t.Helper()
	for {
		c, err := l.Accept()
		if err == nil {
			t.Cleanup(c.Close)
			return c
		}
		if !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("accept: %v", err)
		}
		waitEvents(t, l, EventIn, 10*time.Second)
	}
}

// spliceConn splices ep to a new socketpair and returns the program's end.
func spliceConn(t testing.TB, ep *TCPEndpoint) *net.UnixConn {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	end := new(programConn)
	if ep.progEnd == nil {
		ep.SetProgramEnd(end)
	}
	if err := ep.Splice(os.NewFile(uintptr(fds[0]), "proxy")); err != nil {
		t.Fatalf("splice: %v", err)
	}
	f := os.NewFile(uintptr(fds[1]), "program")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	uc := c.(*net.UnixConn)
	end.c.Store(uc)
	t.Cleanup(func() { c.Close() })
	return uc
}

// programConn is a test program's end as the supervisor reaches it (ProgramEnd).
type programConn struct{ c atomic.Pointer[net.UnixConn] }

func (p *programConn) CopyFD() int {
	c := p.c.Load()
	if c == nil {
		return -1
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	rc.Control(func(f uintptr) { fd, _ = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) })
	return fd
}

// unreachable is a ProgramEnd that cannot find the program's end any more.
type unreachable struct{}

func (unreachable) CopyFD() int { return -1 }

// splicedPair returns the program ends of a connection from a to b on port, over v4 or v6.
func (n *testNet) splicedPair(t testing.TB, v6 bool, port uint16) (client, server *net.UnixConn, cep, sep *TCPEndpoint) {
	t.Helper()
	dst := netip.AddrPortFrom(addrB4.Addr(), port)
	if v6 {
		dst = netip.AddrPortFrom(addrB6.Addr(), port)
	}
	l := listenTCP(t, n.b, dst)
	cep = dialTCP(t, n.a, v6, dst)
	sep = acceptTCP(t, l)
	return spliceConn(t, cep), spliceConn(t, sep), cep, sep
}

// splicedClient is splicedPair with only the client spliced: the test drives the server's
// endpoint itself (port 80, IPv4).
func (n *testNet) splicedClient(t testing.TB) (client *net.UnixConn, cep, sep *TCPEndpoint) {
	t.Helper()
	l := listenTCP(t, n.b, ap("192.0.2.2:80"))
	cep = dialTCP(t, n.a, false, ap("192.0.2.2:80"))
	sep = acceptTCP(t, l)
	return spliceConn(t, cep), cep, sep
}

// countFDs returns the number of open file descriptors of the process.
func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkNoLeaks waits, once the test has closed its stacks, for the proxy and link goroutines
// to go away and for the fd count to return to before (counted before the stacks existed: a
// stack's parker opens its epoll set when a loop first parks).
func checkNoLeaks(t testing.TB, fdsBefore int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		leaked := ""
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "netstack.(*splice)") || strings.Contains(g, "netstack.(*link)") {
				leaked += g + "\n\n"
			}
		}
		fds := countFDs(t)
		if leaked == "" && fds <= fdsBefore {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leak: %d fds (before %d), goroutines:\n%s", fds, fdsBefore, leaked)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
