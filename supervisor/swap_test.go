package supervisor

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const hostPortEnv = "ZTNC_SUPERVISOR_TEST_HOST_PORT"

// epollHost registers a socket with epoll before a non-blocking connect to a host listener
// (as nginx does with its upstreams): the socket becomes a host socket at connect, and the
// registration must follow it — events with the original data, then MOD and DEL by number.
func epollHost() error {
	port, _ := strconv.Atoi(os.Getenv(hostPortEnv))
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	must(err, "socket")
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	must(err, "epoll_create")
	const data = 0x5eed
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLET, Fd: data}
	must(unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, s, &ev), "epoll_ctl ADD before connect")
	err = unix.Connect(s, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
	if err != nil && err != unix.EINPROGRESS {
		return fmt.Errorf("connect: %v", err)
	}
	wait := func(want uint32) error {
		evs := make([]unix.EpollEvent, 4)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			n, err := unix.EpollWait(ep, evs, 100)
			if err == unix.EINTR {
				continue
			}
			for _, e := range evs[:max(n, 0)] {
				if e.Fd != data {
					return fmt.Errorf("event with data %#x", e.Fd)
				}
				if e.Events&want != 0 {
					return nil
				}
			}
		}
		return fmt.Errorf("no event %#x", want)
	}
	if err := wait(unix.EPOLLOUT); err != nil {
		return fmt.Errorf("after connect: %w", err)
	}
	if e, _ := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_ERROR); e != 0 {
		return fmt.Errorf("SO_ERROR %d", e)
	}
	if _, err := unix.Write(s, []byte("ping")); err != nil {
		return err
	}
	if err := wait(unix.EPOLLIN); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	b := make([]byte, 16)
	n, err := unix.Read(s, b)
	if err != nil || string(b[:n]) != "pong" {
		return fmt.Errorf("read %q %v", b[:n], err)
	}
	ev.Events = unix.EPOLLIN
	must(unix.EpollCtl(ep, unix.EPOLL_CTL_MOD, s, &ev), "epoll_ctl MOD after the swap")
	must(unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, s, nil), "epoll_ctl DEL after the swap")
	// It is a host socket now: the kernel's own TCP, bound on loopback.
	sa, err := unix.Getsockname(s)
	if in4, ok := sa.(*unix.SockaddrInet4); err != nil || !ok || in4.Addr != [4]byte{127, 0, 0, 1} {
		return fmt.Errorf("getsockname %#v %v", sa, err)
	}
	return nil
}

// hostEcho accepts one connection on the host's loopback and answers "ping" with "pong".
func hostEcho(t *testing.T) (port int, accepted chan struct{}) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = make(chan struct{}, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		accepted <- struct{}{}
		b := make([]byte, 4)
		if _, err := c.Read(b); err == nil && string(b) == "ping" {
			c.Write([]byte("pong"))
		}
		c.Read(b)
	}()
	return l.Addr().(*net.TCPAddr).Port, accepted
}

func TestEpollCarriedToHostSocket(t *testing.T) {
	for _, tc := range []struct {
		name string
		pol  func(port int) Policy
	}{
		{"fall-through", func(int) Policy { return Policy{} }},
		{"isolate-hole", func(port int) Policy {
			return Policy{Isolate: true, Allow: []HostRule{{Prefix: netipPrefix("127.0.0.1/32"), Port: uint16(port)}}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, accepted := hostEcho(t)
			out, _ := superviseWith(t, "epollhost", tc.pol(port), hostPortEnv+"="+strconv.Itoa(port))
			if !strings.Contains(out, "OK") {
				t.Fatalf("child: %s", out)
			}
			select {
			case <-accepted:
			default:
				t.Fatal("the host listener saw no connection")
			}
		})
	}
}

func TestParseEpollInfo(t *testing.T) {
	info := "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n" +
		"tfd:        5 events: 80000019 data:             5eed  pos:0 ino:1d3e sdev:8\n" +
		"tfd:        5 events:       19 data:                7  pos:0 ino:9999 sdev:8\n" +
		"tfd:        7 events:        1 data:                7  pos:0 ino:1d3e sdev:8\n" +
		"tfd: garbage\n"
	got := parseEpollInfo([]byte(info), 3, 5, 0x1d3e)
	want := []epollWatch{{epfd: 3, events: 0x80000019, data: 0x5eed}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
