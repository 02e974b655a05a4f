package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// execTimeout bounds Host.Exec; programs that run longer belong in Start.
const execTimeout = 10 * time.Minute

// Host is a network namespace in a lab.
type Host struct {
	Name  string
	NS    string     // namespace name, as `ip netns` knows it
	Iface string     // its link into the lab: "eth0" ("br0" for Lab.Bridge)
	Addr  netip.Addr // IPv4 address on Iface
	Addr6 netip.Addr // IPv6 address on Iface when Config.IPv6, else invalid

	httpOnce  sync.Once
	transport *http.Transport
}

// Argv returns argv prefixed so that it runs in the host's namespace.
func (h *Host) Argv(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", h.NS}, argv...)
}

// Start starts a long-lived program in the host; see Proc. The test's cleanup stops it.
func (h *Host) Start(t T, name string, args ...string) *Proc {
	t.Helper()
	return h.Endpoint().Start(t, name, args...)
}

// Exec runs a program in the host to completion (at most execTimeout) and returns its stdout.
// Its stderr goes to the test log, and into the error when it fails.
func (h *Host) Exec(t T, name string, args ...string) (string, error) {
	t.Helper()
	return h.Endpoint().Exec(t, name, args...)
}

// Run is Exec that fails the test when the program fails.
func (h *Host) Run(t T, name string, args ...string) string {
	t.Helper()
	return h.Endpoint().Run(t, name, args...)
}

func execArgv(t T, label string, argv []string) (string, error) {
	t.Helper()
	return execArgvTimeout(t, label, argv, execTimeout)
}

func execArgvTimeout(t T, label string, argv []string, timeout time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := command(ctx, argv)
	var stdout bytes.Buffer
	stderr := newLogWriter(t, label)
	defer stderr.close()
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	t.Logf("%s: run: %s", label, Quote(argv))
	err := StartCmd(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s: %s: %w: %s", label, Quote(argv), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Do runs fn on an OS thread that has entered the host's network namespace: sockets fn creates
// belong to the host and stay there when used from other goroutines later. The thread is
// discarded afterwards, so no goroutine ever runs in the wrong namespace.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread exits with this goroutine.
		runtime.LockOSThread()
		f, err := os.Open(netnsDir + "/" + h.NS)
		if err != nil {
			errc <- fmt.Errorf("enter %s: %w", h.NS, err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("enter %s: setns: %w", h.NS, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// DialContext dials from inside the host's namespace (see Do).
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// HTTPClient returns an HTTP client whose connections start in the host's namespace.
func (h *Host) HTTPClient() *http.Client {
	h.httpOnce.Do(func() {
		h.transport = &http.Transport{DialContext: h.DialContext, MaxIdleConnsPerHost: 4}
	})
	return &http.Client{Transport: h.transport, Timeout: 30 * time.Second}
}

func (h *Host) closeIdle() {
	if h.transport != nil {
		h.transport.CloseIdleConnections()
	}
}

// WaitTCP waits until a TCP connection from the host to addr ("ip:port") succeeds.
func (h *Host) WaitTCP(addr string, timeout time.Duration) error {
	return poll(timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := h.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// WaitUDP waits until a UDP socket in the host is bound to port (any address).
func (h *Host) WaitUDP(port int, timeout time.Duration) error {
	return poll(timeout, func() error {
		var bound bool
		err := h.Do(func() (err error) {
			bound, err = udpBound(port)
			return err
		})
		if err == nil && !bound {
			err = fmt.Errorf("no UDP socket on port %d in %s", port, h.NS)
		}
		return err
	})
}

// udpBound reports whether the calling thread's namespace has a UDP socket on port.
func udpBound(port int) (bool, error) {
	for _, file := range []string{"/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"} {
		f, err := os.Open(file)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6
		}
		if err != nil {
			return false, err
		}
		s := bufio.NewScanner(f)
		s.Scan() // header
		for s.Scan() {
			// "  sl  local_address rem_address ...": local_address is HEXIP:HEXPORT.
			fields := strings.Fields(s.Text())
			if len(fields) < 2 {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
				f.Close()
				return true, nil
			}
		}
		f.Close()
	}
	return false, nil
}

// Sysctl sets a kernel parameter of the host's network namespace, such as
// "net.ipv4.ip_local_port_range" (net.* parameters are per namespace).
func (h *Host) Sysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return h.Do(func() error {
		if err := os.WriteFile(path, []byte(value), 0); err != nil {
			return fmt.Errorf("sysctl %s in %s: %w", key, h.Name, err)
		}
		return nil
	})
}

// WaitAddr waits until device dev in the host has address a (0 timeout: check once).
func (h *Host) WaitAddr(dev string, a netip.Addr, timeout time.Duration) error {
	return poll(timeout, func() error {
		return h.Do(func() error {
			ifi, err := net.InterfaceByName(dev)
			if err != nil {
				return err
			}
			addrs, err := ifi.Addrs()
			if err != nil {
				return err
			}
			for _, x := range addrs {
				if n, ok := x.(*net.IPNet); ok && n.IP.Equal(a.AsSlice()) {
					return nil
				}
			}
			return fmt.Errorf("%s in %s has no address %s", dev, h.Name, a)
		})
	})
}

// poll calls try every 50 ms until it succeeds or timeout passes, and returns its last error.
// A stopPolling error ends it at once.
func poll(timeout time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil {
			return nil
		}
		var stop stopPolling
		if errors.As(err, &stop) {
			return stop.err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopPolling wraps an error after which polling is pointless.
type stopPolling struct{ err error }

func (s stopPolling) Error() string { return s.err.Error() }

func baseName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}
