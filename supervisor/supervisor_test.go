package supervisor

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/notify"
)

const childEnv = "ZTNC_SUPERVISOR_TEST_CHILD"

func TestMain(m *testing.M) {
	if what := os.Getenv(childEnv); what != "" {
		if err := child(what); err != nil {
			fmt.Println("FAIL:", err)
			os.Exit(1)
		}
		fmt.Println("OK")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is the supervised program: raw socket calls, so each step is exactly one trapped call.
func child(what string) error {
	switch what {
	case "identity":
		return identity()
	case "epollhost":
		return epollHost()
	case "nativeopts":
		return nativeOptions()
	}
	return fmt.Errorf("unknown behaviour %q", what)
}

func must(err error, what string) {
	if err != nil {
		panic(fmt.Sprintf("%s: %v", what, err))
	}
}

// identity checks that a socket is the same socket under another fd number (dup), in another
// fd table entry passed over SCM_RIGHTS, and that the program sees only AF_INET addresses.
func identity() error {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(err, "socket")
	must(unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{10, 9, 0, 1}}), "bind")
	dup, err := unix.Dup(ln)
	must(err, "dup")
	must(unix.Close(ln), "close")
	must(unix.Listen(dup, 8), "listen on the dup")
	sa, err := unix.Getsockname(dup)
	must(err, "getsockname")
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok || in4.Port == 0 || in4.Addr != [4]byte{10, 9, 0, 1} {
		return fmt.Errorf("getsockname: %#v", sa)
	}
	// Pass the listener to ourselves over SCM_RIGHTS and accept through the received fd.
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(err, "socketpair")
	must(unix.Sendmsg(pair[0], []byte{0}, unix.UnixRights(dup), nil, 0), "sendmsg")
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(pair[1], make([]byte, 1), oob, 0)
	must(err, "recvmsg")
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	fds, _ := unix.ParseUnixRights(&msgs[0])
	passed := fds[0]
	unix.Close(dup)

	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	must(err, "socket")
	must(unix.Connect(c, &unix.SockaddrInet4{Addr: [4]byte{10, 9, 0, 1}, Port: in4.Port}), "connect")
	a, peer, err := unix.Accept4(passed, unix.SOCK_CLOEXEC)
	must(err, "accept through the passed fd")
	local, _ := unix.Getsockname(c)
	if p, ok := peer.(*unix.SockaddrInet4); !ok || p.Port != local.(*unix.SockaddrInet4).Port {
		return fmt.Errorf("accept peer %#v, client %#v", peer, local)
	}
	if d, _ := unix.GetsockoptInt(a, unix.SOL_SOCKET, unix.SO_DOMAIN); d != unix.AF_INET {
		return fmt.Errorf("SO_DOMAIN %d", d)
	}
	if _, err := unix.Write(c, []byte("ping")); err != nil {
		return err
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(os.NewFile(uintptr(a), "a"), b); err != nil || string(b) != "ping" {
		return fmt.Errorf("read %q %v", b, err)
	}
	for _, fd := range []int{c, passed, pair[0], pair[1]} {
		unix.Close(fd)
	}
	return nil
}

// supervise runs the test binary as behaviour what under a Supervisor on a one-port stack
// and returns the child's output and the supervisor.
func supervise(t *testing.T, what string) (string, *Supervisor) {
	t.Helper()
	return superviseWith(t, what, Policy{})
}

// superviseWith is supervise under policy p, with more environment variables for the child.
func superviseWith(t *testing.T, what string, pol Policy, env ...string) (string, *Supervisor) {
	t.Helper()
	hub := netstack.NewHub()
	st, err := netstack.New(hub.NewPort([6]byte{2, 0, 0, 0, 0, 1}, 2800), netstack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.SetAddresses([]netip.Prefix{netip.MustParsePrefix("10.9.0.1/24")}); err != nil {
		t.Fatal(err)
	}
	prog, err := notify.Compile(pol.Spec())
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	outR, outW, _ := os.Pipe()
	p, err := notify.Start(prog, notify.Command{
		Path: exe, Args: []string{exe}, Env: append(append(os.Environ(), childEnv+"="+what), env...),
		Files: []*os.File{nil, outW, os.Stderr},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	s, err := New(p.Listener, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetPolicy(pol)
	t.Cleanup(s.Close)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	if err := p.WaitExec(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(outR)
	p.Wait()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	return string(out), s
}

// nativeOptions sets and reads SO_KEEPALIVE natively and through the trap (high bits in the
// level, which the kernel ignores and the filter does not): both must agree, and an accepted
// socket inherits the listener's.
func nativeOptions() error {
	raw := func(nr uintptr, fd int, level uint64, v *int32) error {
		n := int32(4)
		var e syscall.Errno
		if nr == unix.SYS_SETSOCKOPT {
			_, _, e = unix.Syscall6(nr, uintptr(fd), uintptr(level), unix.SO_KEEPALIVE, uintptr(unsafe.Pointer(v)), 4, 0)
		} else {
			_, _, e = unix.Syscall6(nr, uintptr(fd), uintptr(level), unix.SO_KEEPALIVE, uintptr(unsafe.Pointer(v)), uintptr(unsafe.Pointer(&n)), 0)
		}
		if e != 0 {
			return e
		}
		return nil
	}
	const highLevel = 1<<32 | unix.SOL_SOCKET
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	must(err, "socket")
	one, got := int32(1), int32(-1)
	must(raw(unix.SYS_SETSOCKOPT, ln, highLevel, &one), "setsockopt through the trap")
	if v, err := unix.GetsockoptInt(ln, unix.SOL_SOCKET, unix.SO_KEEPALIVE); err != nil || v != 1 {
		return fmt.Errorf("native SO_KEEPALIVE after a trapped set: %d %v", v, err)
	}
	must(unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{10, 9, 0, 1}}), "bind")
	must(unix.Listen(ln, 8), "listen")
	sa, _ := unix.Getsockname(ln)
	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	must(err, "socket")
	must(unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1), "native setsockopt")
	must(raw(unix.SYS_GETSOCKOPT, c, highLevel, &got), "getsockopt through the trap")
	if got != 1 {
		return fmt.Errorf("trapped SO_KEEPALIVE after a native set: %d", got)
	}
	must(unix.Connect(c, sa), "connect")
	a, _, err := unix.Accept(ln)
	must(err, "accept")
	if v, _ := unix.GetsockoptInt(a, unix.SOL_SOCKET, unix.SO_KEEPALIVE); v != 1 {
		return fmt.Errorf("accepted socket did not inherit SO_KEEPALIVE: %d", v)
	}
	// The program sees Linux's keepalive timers (the proxy's own are not shown).
	if v, _ := unix.GetsockoptInt(c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); v != 7200 {
		return fmt.Errorf("TCP_KEEPIDLE %d after SO_KEEPALIVE before connect", v)
	}
	must(unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0), "native clear")
	if v, _ := unix.GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_KEEPALIVE); v != 0 {
		return fmt.Errorf("SO_KEEPALIVE %d after clearing", v)
	}
	for _, fd := range []int{c, a, ln} {
		unix.Close(fd)
	}
	return nil
}

func TestNativeOptions(t *testing.T) {
	if out, _ := supervise(t, "nativeopts"); !strings.Contains(out, "OK") {
		t.Fatalf("child: %s", out)
	}
}

func TestIdentityAcrossDupAndSCMRights(t *testing.T) {
	out, s := supervise(t, "identity")
	if !strings.Contains(out, "OK") {
		t.Fatalf("child: %s", out)
	}
	// Every socket the program made is released once it is gone: no leak.
	deadline := time.Now().Add(2 * lingerCheck)
	for s.Sockets() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.Sockets(); n != 0 {
		t.Fatalf("%d sockets still tracked after the program exited", n)
	}
}

// TestProgEndReadiness checks the af_unix accounting the emulation relies on: a closed P is
// neither readable nor writable and refuses writes; opening it raises POLLOUT and leaves no
// junk in S.
func TestProgEndReadiness(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, sfd := fds[0], fds[1]
	defer unix.Close(p)
	defer unix.Close(sfd)
	poll := func() int16 {
		pfd := []unix.PollFd{{Fd: int32(p), Events: unix.POLLIN | unix.POLLOUT}}
		unix.Poll(pfd, 0)
		return pfd[0].Revents
	}
	junk, err := closeProgEnd(p)
	if err != nil || junk == 0 {
		t.Fatalf("closeProgEnd: %d, %v", junk, err)
	}
	if ev := poll(); ev != 0 {
		t.Fatalf("closed P polls %#x", ev)
	}
	if _, err := unix.Write(p, []byte("x")); err != unix.EAGAIN {
		t.Fatalf("write to closed P: %v", err)
	}
	sk := &socket{sfd: sfd, junk: junk}
	if err := sk.openProgEnd(p); err != nil {
		t.Fatal(err)
	}
	if ev := poll(); ev != unix.POLLOUT {
		t.Fatalf("open P polls %#x", ev)
	}
	if _, err := unix.Read(sfd, make([]byte, 1)); err != unix.EAGAIN {
		t.Fatalf("junk left in S: %v", err)
	}
	if v, _ := unix.GetsockoptInt(p, unix.SOL_SOCKET, unix.SO_SNDBUF); v != defaultSndbuf() {
		t.Fatalf("SO_SNDBUF %d, want %d", v, defaultSndbuf())
	}
}
