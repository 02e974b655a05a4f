package compat

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/ztnc/ztnc/tests/lab"
)

// hostPlacement runs server and client on the host's loopback, without ztnc: it proves that an
// entry's own set-up works, so that a failure elsewhere is the placement's.
type hostPlacement struct{}

func (hostPlacement) Name() string { return "host" }
func (hostPlacement) About() string {
	return "server and client on the host's loopback (127.0.0.1), without ztnc: proves the entry's own set-up"
}

func (hostPlacement) Open(t lab.T, env *Env) (Network, error) {
	n := hostNetwork{env: env}
	if b, err := os.ReadFile("/proc/net/if_inet6"); err != nil || !strings.Contains(string(b), " lo\n") {
		n.noIPv6 = "the host's loopback has no IPv6 (::1)"
	}
	return n, nil
}

type hostNetwork struct {
	env    *Env
	noIPv6 string
}

func (n hostNetwork) Missing(f Feature) string {
	if f == IPv6 {
		return n.noIPv6
	}
	return ""
}

func (n hostNetwork) Pair(t lab.T, dir string) (server, client Endpoint) {
	a := launchAgent(t, n.env, "host", nil, agentReadyTimeout)
	lo := Endpoint{Agent: a, Addr: netip.MustParseAddr("127.0.0.1"), Addr6: netip.IPv6Loopback()}
	return lo, lo
}

// netnsPlacement runs the server in one network namespace and the client in another, joined
// by veth through a bridge (tests/lab), without ztnc: the programs' own networking across a
// real link, and the namespace plumbing the ztnc placements build on.
type netnsPlacement struct{}

func (netnsPlacement) Name() string { return "netns" }
func (netnsPlacement) About() string {
	return "server and client in two network namespaces joined by veth and a bridge (tests/lab), without ztnc"
}

func (netnsPlacement) Open(t lab.T, env *Env) (Network, error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, unavailable("the ip tool (iproute2) is not installed")
	}
	return netnsNetwork{env}, nil
}

type netnsNetwork struct{ env *Env }

func (netnsNetwork) Missing(Feature) string { return "" }

func (n netnsNetwork) Pair(t lab.T, dir string) (server, client Endpoint) {
	l := lab.New(t, lab.Config{IPv6: true})
	s, c := l.AddHost("server", ""), l.AddHost("client", "")
	return Endpoint{launchAgent(t, n.env, "server", s.Argv(), agentReadyTimeout), s.Addr, s.Addr6},
		Endpoint{launchAgent(t, n.env, "client", c.Argv(), agentReadyTimeout), c.Addr, c.Addr6}
}
