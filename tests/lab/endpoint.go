package lab

import (
	"fmt"
	"net/netip"
	"time"
)

// Endpoint is where a program runs so that its sockets are on a particular network: a host
// namespace, the address peers reach it at, and an optional wrapper for the program's argv.
//
//   - plain veth: Host's namespace, Host.Addr, no wrapper;
//   - a zerotier-one member: the member's namespace, its address on the ZeroTier network
//     (the kernel TAP device carries the traffic), no wrapper;
//   - ztnc-run: the member's namespace, its ZeroTier address, and a wrapper that returns
//     ztnc-run --home H --nwid N -- argv...
//
// With a wrapper, each program started is a separate node process using the same home: run
// one wrapped program per endpoint at a time.
type Endpoint struct {
	Name string
	Host *Host
	Addr netip.Addr
	Wrap func(argv []string) []string
}

func (e *Endpoint) argv(name string, args []string) []string {
	argv := append([]string{name}, args...)
	if e.Wrap != nil {
		argv = e.Wrap(argv)
	}
	return e.Host.Argv(argv...)
}

func (e *Endpoint) label(name string) string { return e.Name + "/" + baseName(name) }

// Start starts a long-lived program on the endpoint; the test's cleanup stops it.
func (e *Endpoint) Start(t T, name string, args ...string) *Proc {
	t.Helper()
	return startProc(t, e.label(name), e.argv(name, args))
}

// Exec runs a program on the endpoint to completion and returns its stdout (see Host.Exec).
func (e *Endpoint) Exec(t T, name string, args ...string) (string, error) {
	t.Helper()
	return execArgv(t, e.label(name), e.argv(name, args))
}

// Run is Exec that fails the test when the program fails.
func (e *Endpoint) Run(t T, name string, args ...string) string {
	t.Helper()
	out, err := e.Exec(t, name, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// WaitTCP waits until a program on this endpoint could connect to addr:port. Without a wrapper
// it dials from the host's namespace; with one, the sockets live in the wrapped program, so
// it runs a bash /dev/tcp probe loop under the wrapper.
func (e *Endpoint) WaitTCP(t T, addr netip.Addr, port int, timeout time.Duration) error {
	t.Helper()
	target := netip.AddrPortFrom(addr, uint16(port))
	if e.Wrap == nil {
		return e.Host.WaitTCP(target.String(), timeout)
	}
	probe := fmt.Sprintf(`end=$((SECONDS+%d)); until (: <>/dev/tcp/%s/%d) 2>/dev/null; do
	  [ $SECONDS -ge $end ] && exit 1; sleep 0.1; done`,
		int(timeout/time.Second)+1, addr, port)
	if _, err := e.Exec(t, "bash", "-c", probe); err != nil {
		return fmt.Errorf("%s: %s not reachable after %v: %w", e.Name, target, timeout, err)
	}
	return nil
}

// Host returns an Endpoint for programs running directly in h, reached at h.Addr.
func (h *Host) Endpoint() *Endpoint {
	return &Endpoint{Name: h.Name, Host: h, Addr: h.Addr}
}

// HostPort formats addr:port for URLs and command lines (brackets for IPv6).
func HostPort(addr netip.Addr, port int) string {
	return netip.AddrPortFrom(addr, uint16(port)).String()
}
