package compat

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ztnc/ztnc/tests/compat/agent"
	"github.com/ztnc/ztnc/tests/lab"
)

// Placement decides where an entry's server and where its client run. Each starts an agent
// (see package agent) on each side; the entry starts its programs through them, so the same
// entry code runs on the host, across namespaces, or under ztnc-run.
type Placement interface {
	// Name is the placement's column in the matrix: host, netns, local, zt.
	Name() string
	// About says in one line where the server and the client run.
	About() string
	// Open readies the placement for a run; what it shares between entries (a root and a
	// controller) is removed by t's cleanup. An *Unavailable error says why it cannot run on
	// this machine or with this ztnc-run.
	Open(t lab.T, env *Env) (Network, error)
}

// Network is an opened placement.
type Network interface {
	// Missing says why entries that need f cannot run here yet, or "" when they can.
	Missing(f Feature) string
	// Pair starts the agents for one entry, which t's cleanup stops. dir is the entry's work
	// directory (for state such as ztnc-run homes).
	Pair(t lab.T, dir string) (server, client Endpoint)
}

// Endpoint is one side of an entry: an agent running there, and the side's address.
type Endpoint struct {
	Agent *agent.Client
	// Addr is where the side is on the placement's network: servers bind to it and clients
	// connect to it; a server sees its clients connect from theirs.
	Addr netip.Addr
	// Addr6 is the side's IPv6 address, when the placement has IPv6 (see Feature IPv6).
	Addr6 netip.Addr
}

// Feature is what an entry needs beyond TCP.
type Feature string

// Features that ztnc-run gains over time (issue 5).
const (
	UDP  Feature = "UDP"
	ICMP Feature = "ICMP"
	IPv6 Feature = "IPv6"
)

// Unavailable is the error of a placement that cannot run here.
type Unavailable struct{ Reason string }

func (u *Unavailable) Error() string { return u.Reason }

func unavailable(format string, args ...any) error {
	return &Unavailable{Reason: fmt.Sprintf(format, args...)}
}

// IsUnavailable reports whether err says that a placement cannot run here.
func IsUnavailable(err error) bool {
	var u *Unavailable
	return errors.As(err, &u)
}

// Placements are all placements, from the baseline to the one closest to what users run.
func Placements() []Placement {
	return []Placement{hostPlacement{}, netnsPlacement{}, localPlacement{}, ztPlacement{}}
}

// agentReadyTimeout bounds the start of an agent that needs no network set-up.
const agentReadyTimeout = 30 * time.Second

// launchAgent starts an agent behind wrapper (possibly empty) and stops it with t's cleanup.
func launchAgent(t lab.T, env *Env, label string, wrapper []string, readyTimeout time.Duration) *agent.Client {
	t.Helper()
	argv := append(append([]string(nil), wrapper...), env.Agent...)
	t.Logf("%s: agent: %s", label, lab.Quote(argv))
	a, err := agent.Launch(argv, readyTimeout, func(format string, args ...any) {
		t.Logf(label+": "+format, args...)
	})
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Logf("%s: %v", label, err)
		}
	})
	return a
}
