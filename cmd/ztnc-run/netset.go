package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/supervisor"
	"github.com/ztnc/ztnc/supervisor/resolver"
	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// netset is the ZeroTier networks of an instance with a node, a stack on each, and what every
// program the instance supervises gets from them (supervision). Networks are joined and left
// while the instance runs (ztnc-run join, leave): a program gets the networks joined when it
// starts, and loses a network when it is left — the stack's addresses and routes go, as an
// interface's would.
//
// The stack of the first network joined is the base of every program: loopback, wildcard
// listeners and the DNS responder live there, and the loopback index is one for the
// instance, so 127.0.0.1 reaches the listener of a program attached earlier. The base stays
// for the instance's life, also when its network is left (it keeps no address then).
type netset struct {
	ctx       context.Context
	log       *slog.Logger
	node      *zt.Node
	policy    supervisor.Policy
	hosts     *localNames // --add-host names; its stack is the base
	loopbacks *supervisor.Loopbacks
	changed   func([]attachment) // told the joined networks after each change

	mu        sync.Mutex
	nets      []attachment // joined, in join order
	base      attachment   // the first network joined (zero before)
	dns       *resolver.Server
	redirects []supervisor.Redirect
	users     map[*netstack.Stack]int  // how many running programs have each stack
	left      map[*netstack.Stack]bool // stacks of left networks, closed when unused
	closed    bool
}

func newNetset(ctx context.Context, log *slog.Logger, node *zt.Node, policy supervisor.Policy, addHosts []string) (*netset, error) {
	hosts, err := newLocalNames(nil, "", addHosts)
	if err != nil {
		return nil, err
	}
	// Shared by the supervisors of every program: fall-through fails closed while a network
	// is not up (see followConfig).
	policy.Outages = &supervisor.Outages{}
	return &netset{
		ctx: ctx, log: log, node: node, policy: policy, hosts: hosts,
		loopbacks: &supervisor.Loopbacks{},
		changed:   func([]attachment) {},
		users:     map[*netstack.Stack]int{}, left: map[*netstack.Stack]bool{},
	}, nil
}

// watch has f told the joined networks now and after each change.
func (ns *netset) watch(f func([]attachment)) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.changed = f
	f(slices.Clone(ns.nets))
}

// errNotJoined answers a request about a network the instance has not joined.
func errNotJoined(id ztaddr.NetworkID) error {
	return &apiError{http.StatusNotFound, "network " + id.String() + " is not joined"}
}

// join joins a network and starts its stack (or returns it when already joined).
func (ns *netset) join(id ztaddr.NetworkID) (attachment, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return attachment{}, &apiError{http.StatusServiceUnavailable, "stopping"}
	}
	if i := ns.index(id); i >= 0 {
		return ns.nets[i], nil
	}
	nw, err := ns.node.Join(id)
	if err != nil {
		return attachment{}, &apiError{http.StatusBadRequest, err.Error()}
	}
	st, err := netstack.New(nw, netstack.Config{})
	if err != nil {
		ns.node.Leave(id)
		return attachment{}, fmt.Errorf("network %s: stack: %w", id, err)
	}
	a := attachment{nw, st}
	if ns.base.stack == nil {
		if err := ns.startResolver(st); err != nil {
			st.Close()
			ns.node.Leave(id)
			return attachment{}, err
		}
		ns.base = a
	}
	followConfig(ns.ctx, ns.log, nw, st, ns.policy.Outages)
	ns.nets = append(ns.nets, a)
	ns.changed(slices.Clone(ns.nets))
	return a, nil
}

// startResolver serves the DNS responder on the base stack. ns.mu is held.
func (ns *netset) startResolver(base *netstack.Stack) error {
	ns.hosts.st = base
	names := func() []resolver.Network {
		ns.mu.Lock()
		defer ns.mu.Unlock()
		out := make([]resolver.Network, 0, len(ns.nets)+1)
		for _, a := range ns.nets {
			out = append(out, &ztNames{nw: a.nw, self: ns.node.Address(), st: a.stack})
		}
		return append(out, ns.hosts)
	}
	dns, redirects, err := startResolver(ns.log, base, names, upstreamResolvers(ns.policy), ns.policy.Outages)
	if err != nil {
		return err
	}
	ns.dns, ns.redirects = dns, redirects
	return nil
}

// index finds a joined network; ns.mu is held.
func (ns *netset) index(id ztaddr.NetworkID) int {
	return slices.IndexFunc(ns.nets, func(a attachment) bool { return a.nw.ID() == id })
}

// leave leaves a network: the node forgets it and its stack loses its addresses and routes
// before leave returns, so the programs have lost it when `ztnc-run leave` answers. The
// stack is closed once no running program has it.
func (ns *netset) leave(id ztaddr.NetworkID) error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	i := ns.index(id)
	if i < 0 {
		return errNotJoined(id)
	}
	a := ns.nets[i]
	ns.nets = slices.Delete(ns.nets, i, i+1)
	err := ns.node.Leave(id)
	forget(a.stack, ns.policy.Outages)
	ns.left[a.stack] = true
	ns.closeUnused()
	ns.changed(slices.Clone(ns.nets))
	return err
}

// closeUnused closes the stacks of left networks that no program has (the base stays).
// ns.mu is held.
func (ns *netset) closeUnused() {
	for st := range ns.left {
		if ns.users[st] == 0 && st != ns.base.stack {
			st.Close()
			delete(ns.left, st)
		}
	}
}

// joined returns the joined networks.
func (ns *netset) joined() []attachment {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return slices.Clone(ns.nets)
}

// errNoNetwork: programs need a network to run on.
var errNoNetwork = &apiError{http.StatusServiceUnavailable, "no network joined: join one first (ztnc-run join NWID)"}

// supervision is what a program starting now gets: the base stack and those of the joined
// networks, the policy, the DNS redirects and the instance's loopback index. release gives
// the stacks back when the program has ended.
func (ns *netset) supervision() (sv *supervision, release func(), err error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return nil, nil, &apiError{http.StatusServiceUnavailable, "stopping"}
	}
	if ns.base.stack == nil {
		return nil, nil, errNoNetwork
	}
	atts := []attachment{ns.base}
	for _, a := range ns.nets {
		if a.stack != ns.base.stack {
			atts = append(atts, a)
		}
	}
	sv = &supervision{policy: ns.policy, redirects: ns.redirects, loopbacks: ns.loopbacks, links: linksOf(atts)}
	for _, a := range atts {
		sv.stacks = append(sv.stacks, a.stack)
		ns.users[a.stack]++
	}
	var once sync.Once
	return sv, func() {
		once.Do(func() {
			ns.mu.Lock()
			defer ns.mu.Unlock()
			for _, st := range sv.stacks {
				ns.users[st]--
			}
			if !ns.closed {
				ns.closeUnused()
			}
		})
	}, nil
}

// linksOf names the networks' interfaces as zerotier-one does, in stack order.
func linksOf(atts []attachment) func() []supervisor.Link {
	return func() []supervisor.Link {
		links := make([]supervisor.Link, len(atts))
		for i, a := range atts {
			links[i] = supervisor.Link{Name: linkName(a.nw.ID()), MTU: a.nw.State().MTU}
		}
		return links
	}
}

// wait returns once the networks named (every joined one if none is named) are OK with an
// address, failing after wait with the reason (see waitNetworks).
func (ns *netset) wait(ctx context.Context, ids []ztaddr.NetworkID, wait time.Duration) error {
	atts := ns.joined()
	if len(ids) > 0 {
		var named []attachment
		for _, id := range ids {
			i := slices.IndexFunc(atts, func(a attachment) bool { return a.nw.ID() == id })
			if i < 0 {
				return &apiError{http.StatusNotFound, fmt.Sprintf("network %s is not joined: join it first (ztnc-run join %s)", id, id)}
			}
			named = append(named, atts[i])
		}
		atts = named
	}
	if len(atts) == 0 {
		return errNoNetwork
	}
	if err := waitNetworks(ctx, ns.node, atts, wait); err != nil {
		return &apiError{http.StatusServiceUnavailable, err.Error()}
	}
	return nil
}

// close stops the DNS responder and closes every stack. Programs must have ended.
func (ns *netset) close() {
	ns.mu.Lock()
	ns.closed = true
	dns := ns.dns
	stacks := []*netstack.Stack{}
	for _, a := range ns.nets {
		stacks = append(stacks, a.stack)
	}
	for st := range ns.left {
		stacks = append(stacks, st)
	}
	if ns.base.stack != nil && !slices.Contains(stacks, ns.base.stack) {
		stacks = append(stacks, ns.base.stack)
	}
	ns.mu.Unlock()
	if dns != nil {
		dns.Close()
	}
	for _, st := range stacks {
		st.Close()
	}
}
