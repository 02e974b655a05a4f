// Command parityprog makes socket calls whose results Linux defines, edge cases included, and
// prints one line per result. TestLinuxParity runs it on Linux's own stack and under
// ztnc-run and compares the two transcripts line by line, so every line must be the same on
// every run: errno names, addresses with fixed ports, never an ephemeral port's number.
//
//	parityprog [CASE...]    runs the named cases (default: all), in order
//	parityprog child-accept accepts one connection on fd 3 and answers it (case fork-accept)
//
// The program's addresses are 198.51.100.1/24 and 2001:db8:198::1/64 (the tests' --local
// network); the cases talk only to themselves, on those addresses and on loopback.
package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	a4 = netip.MustParseAddr("198.51.100.1")
	a6 = netip.MustParseAddr("2001:db8:198::1")
)

// probe prints one case's transcript.
type probe struct {
	name string
}

func (p *probe) say(format string, args ...any) {
	fmt.Println(p.name + ": " + fmt.Sprintf(format, args...))
}

type testCase struct {
	name string
	run  func(p *probe)
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "child-accept" {
		childAccept()
		return
	}
	want := map[string]bool{}
	for _, a := range os.Args[1:] {
		want[a] = true
	}
	for _, c := range cases {
		if len(want) > 0 && !want[c.name] {
			continue
		}
		p := &probe{name: c.name}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.run(p)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.say("TIMEOUT")
			os.Exit(1)
		}
	}
}

// errno names an error the way the transcript shows it.
func errno(err error) string {
	if err == nil || err == unix.Errno(0) {
		return "ok"
	}
	if e, ok := err.(unix.Errno); ok {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
	}
	return err.Error()
}

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "parityprog: %s: %v\n", what, err)
		os.Exit(2)
	}
}

func sock(family, typ int) int {
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	must(err, "socket")
	return fd
}

func sa(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	return &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// show prints a socket address; an ephemeral port (fixed == false) shows as "eph" when it is
// not 0, so that transcripts compare.
func show(s unix.Sockaddr, fixed bool) string {
	var a netip.Addr
	var port int
	switch s := s.(type) {
	case *unix.SockaddrInet4:
		a, port = netip.AddrFrom4(s.Addr), s.Port
	case *unix.SockaddrInet6:
		a, port = netip.AddrFrom16(s.Addr), s.Port
	case nil:
		return "nil"
	default:
		return fmt.Sprintf("%T", s)
	}
	p := fmt.Sprint(port)
	if !fixed && port != 0 {
		p = "eph"
	}
	return netip.AddrPortFrom(a, 0).Addr().String() + " port " + p
}

func sockname(fd int, fixed bool) string {
	s, err := unix.Getsockname(fd)
	if err != nil {
		return errno(err)
	}
	return show(s, fixed)
}

func peername(fd int, fixed bool) string {
	s, err := unix.Getpeername(fd)
	if err != nil {
		return errno(err)
	}
	return show(s, fixed)
}

func getInt(fd, level, opt int) string {
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		return errno(err)
	}
	return fmt.Sprint(v)
}

// listener returns a listening TCP socket bound to at.
func listener(family int, at netip.AddrPort) int {
	l := sock(family, unix.SOCK_STREAM)
	must(unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1), "SO_REUSEADDR")
	must(unix.Bind(l, sa(at)), "bind "+at.String())
	must(unix.Listen(l, 16), "listen")
	return l
}

// connected returns both ends of a TCP connection to at.
func connected(family int, at netip.AddrPort) (client, server int) {
	l := listener(family, at)
	defer unix.Close(l)
	c := sock(family, unix.SOCK_STREAM)
	must(unix.Connect(c, sa(at)), "connect "+at.String())
	s, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	must(err, "accept")
	return c, s
}

// pollOne waits up to ms for events on fd and shows what came.
func pollOne(fd int, events int16, ms int) string {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := unix.Poll(pfd, ms)
	if err != nil {
		return errno(err)
	}
	if n == 0 {
		return "none"
	}
	var s []string
	for _, f := range []struct {
		bit  int16
		name string
	}{{unix.POLLIN, "IN"}, {unix.POLLOUT, "OUT"}, {unix.POLLERR, "ERR"}, {unix.POLLHUP, "HUP"}, {unix.POLLRDHUP, "RDHUP"}} {
		if pfd[0].Revents&f.bit != 0 {
			s = append(s, f.name)
		}
	}
	return strings.Join(s, "|")
}

func recvStr(fd, n, flags int) string {
	b := make([]byte, n)
	got, _, err := unix.Recvfrom(fd, b, flags)
	if err != nil {
		return errno(err)
	}
	return fmt.Sprintf("%d %q", got, b[:got])
}

func readStr(fd, n int) string {
	b := make([]byte, n)
	got, err := unix.Read(fd, b)
	if err != nil {
		return errno(err)
	}
	return fmt.Sprintf("%d %q", got, b[:max(got, 0)])
}

// rawSyscall makes a socket call with arguments Go's wrappers would not pass (bad pointers,
// lengths).
func rawSyscall(nr uintptr, args ...uintptr) string {
	var a [6]uintptr
	copy(a[:], args)
	_, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	if e != 0 {
		return errno(e)
	}
	return "ok"
}

// ptr gives v's address as a raw system call argument. Keeping v reachable from a global makes
// the compiler put it on the heap, where nothing moves it: a variable on a goroutine's stack
// would move when the stack grows, and rawSyscall's arguments are plain numbers to the runtime.
func ptr[T any](v *T) uintptr {
	keptMu.Lock()
	kept = append(kept, v)
	keptMu.Unlock()
	return uintptr(unsafe.Pointer(v))
}

var (
	keptMu sync.Mutex
	kept   []any
)
