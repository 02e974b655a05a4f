// Package resolver is ztnc-run's DNS responder. Supervised programs resolve names as they
// always do — they read the host's /etc/resolv.conf and query its servers — and the supervisor
// redirects those queries (UDP and TCP port 53) to this responder, which listens on each
// network's stack. It answers the names of the virtual networks from the networks themselves
// and either forwards everything else to the host's resolvers or refuses it: that choice is
// Config.Upstream, the one place where DNS policy is decided.
package resolver

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Network is what one virtual network tells about names; ztnc-run implements it from the
// network's configuration (and, for --local, from its flags). Its methods are called for every
// query, so answers follow configuration changes.
type Network interface {
	// DNS returns the network's DNS domain and servers (ZeroTier 1.6+ network configs carry
	// them); "" and nil when it has none. Names under the domain that Lookup does not know
	// are asked of the servers, over the virtual network.
	DNS() (domain string, servers []netip.Addr)
	// Lookup returns the addresses of a name (lower case, without the final dot) if it
	// belongs to the network: its members' built-in names (<node>.<nwid>.zt), names the
	// controller or the user gave. ok is false for names it does not know.
	Lookup(name string) (addrs []netip.Addr, ok bool)
	// Names returns the names of an address (lower case, without the final dot) for reverse
	// lookups. ok is false when the address is not on the network (in none of its prefixes);
	// an address on it without a name it knows has none.
	Names(addr netip.Addr) (names []string, ok bool)
	// Exchange sends a DNS message to server over the virtual network and returns the
	// answer (TCP when tcp, else UDP).
	Exchange(ctx context.Context, server netip.AddrPort, msg []byte, tcp bool) ([]byte, error)
}

// Config configures a Resolver.
type Config struct {
	// Networks returns the joined networks (called per query).
	Networks func() []Network
	// Upstream are the host's resolvers. Names that are not the virtual networks' are
	// forwarded to them; with none, such queries are answered REFUSED. This is the DNS side of
	// the host-access policy: ztnc-run --local gives none (nothing inside reaches the host).
	Upstream []netip.AddrPort
	// Exchange sends a message to an upstream resolver (over the host's network).
	Exchange func(ctx context.Context, server netip.AddrPort, msg []byte, tcp bool) ([]byte, error)
	// Timeout bounds one forwarded query (default 5 s, glibc's default).
	Timeout time.Duration
}

// Resolver answers DNS messages.
type Resolver struct {
	cfg Config
}

// New makes a Resolver.
func New(cfg Config) *Resolver {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Networks == nil {
		cfg.Networks = func() []Network { return nil }
	}
	return &Resolver{cfg: cfg}
}

// TTL of the answers for virtual-network names: short, since addresses can change with the
// network's configuration.
const answerTTL = 30

// maxUDPAnswer is the size of UDP answers without EDNS (RFC 1035).
const maxUDPAnswer = 512

// Handle answers one DNS message received over UDP (tcp false) or TCP. It returns nil when the
// message deserves no answer (not a query, or too broken to answer).
func (r *Resolver) Handle(ctx context.Context, msg []byte, tcp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil
	}
	questions, err := p.AllQuestions()
	if h.OpCode != 0 {
		return reply(h, nil, dnsmessage.RCodeNotImplemented, false)
	}
	if err != nil || len(questions) != 1 {
		return reply(h, nil, dnsmessage.RCodeFormatError, false)
	}
	q := questions[0]
	if q.Class != dnsmessage.ClassINET && q.Class != dnsmessage.ClassANY {
		return reply(h, &q, dnsmessage.RCodeRefused, false)
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	edns := ednsSize(&p)
	limit := maxUDPAnswer
	if tcp {
		limit = 65535
	} else if edns > limit {
		limit = edns
	}

	nets := r.cfg.Networks()
	for _, n := range nets {
		if addrs, ok := n.Lookup(name); ok {
			return answer(h, q, addrs, edns, limit)
		}
	}
	if addr, ok := reverseAddr(name); ok && (q.Type == dnsmessage.TypePTR || q.Type == dnsmessage.TypeALL) {
		for _, n := range nets {
			names, ok := n.Names(addr)
			if !ok {
				continue
			}
			if len(names) > 0 {
				return ptrAnswer(h, q, names, edns)
			}
			// A name the network's own DNS servers may know, else none.
			if _, servers := n.DNS(); len(servers) > 0 {
				for _, s := range servers {
					if a := r.exchange(ctx, n.Exchange, netip.AddrPortFrom(s, 53), msg, tcp); a != nil {
						return a
					}
				}
				return reply(h, &q, dnsmessage.RCodeServerFailure, false)
			}
			return reply(h, &q, dnsmessage.RCodeNameError, true)
		}
	}
	for _, n := range nets {
		domain, servers := n.DNS()
		if domain == "" || !inDomain(name, strings.ToLower(strings.TrimSuffix(domain, "."))) {
			continue
		}
		if len(servers) == 0 {
			return reply(h, &q, dnsmessage.RCodeNameError, true)
		}
		for _, s := range servers {
			if a := r.exchange(ctx, n.Exchange, netip.AddrPortFrom(s, 53), msg, tcp); a != nil {
				return a
			}
		}
		return reply(h, &q, dnsmessage.RCodeServerFailure, false)
	}
	if name == "zt" || strings.HasSuffix(name, ".zt") {
		// The built-in names' domain: what the networks do not know does not exist.
		return reply(h, &q, dnsmessage.RCodeNameError, true)
	}
	if len(r.cfg.Upstream) == 0 || r.cfg.Exchange == nil {
		return reply(h, &q, dnsmessage.RCodeRefused, false)
	}
	for _, s := range r.cfg.Upstream {
		if a := r.exchange(ctx, r.cfg.Exchange, s, msg, tcp); a != nil {
			return a
		}
	}
	return reply(h, &q, dnsmessage.RCodeServerFailure, false)
}

// exchange forwards msg and returns the answer if it is one to msg.
func (r *Resolver) exchange(ctx context.Context, ex func(context.Context, netip.AddrPort, []byte, bool) ([]byte, error), server netip.AddrPort, msg []byte, tcp bool) []byte {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	a, err := ex(ctx, server, msg, tcp)
	if err != nil || len(a) < 12 || a[0] != msg[0] || a[1] != msg[1] || a[2]&0x80 == 0 {
		return nil
	}
	return a
}

func inDomain(name, domain string) bool {
	return name == domain || strings.HasSuffix(name, "."+domain)
}

// ednsSize returns the UDP size a query's OPT record advertises (0 without one).
func ednsSize(p *dnsmessage.Parser) int {
	if p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return 0
	}
	for {
		rh, err := p.AdditionalHeader()
		if err != nil {
			return 0
		}
		if rh.Type == dnsmessage.TypeOPT {
			return int(rh.Class)
		}
		if p.SkipAdditional() != nil {
			return 0
		}
	}
}

// ednsAnswerSize is the UDP size our answers advertise (the DNS flag day 2020 value).
const ednsAnswerSize = 1232

func responseHeader(h dnsmessage.Header, rcode dnsmessage.RCode, authoritative bool) dnsmessage.Header {
	return dnsmessage.Header{
		ID: h.ID, Response: true, OpCode: h.OpCode, Authoritative: authoritative,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode,
	}
}

// reply is an answer without records.
func reply(h dnsmessage.Header, q *dnsmessage.Question, rcode dnsmessage.RCode, authoritative bool) []byte {
	b := dnsmessage.NewBuilder(nil, responseHeader(h, rcode, authoritative))
	b.EnableCompression()
	if q != nil {
		if b.StartQuestions() != nil || b.Question(*q) != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// answer answers q for a name of a virtual network with its addresses of the asked type
// (none of that type: NOERROR without records, "no data").
func answer(h dnsmessage.Header, q dnsmessage.Question, addrs []netip.Addr, edns, limit int) []byte {
	build := func(max int) ([]byte, bool) {
		b := dnsmessage.NewBuilder(nil, responseHeader(h, dnsmessage.RCodeSuccess, true))
		b.EnableCompression()
		if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
			return nil, false
		}
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: answerTTL}
		n := 0
		for _, a := range addrs {
			if n == max {
				break
			}
			a = a.Unmap()
			switch {
			case a.Is4() && (q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL):
				rh.Type = dnsmessage.TypeA
				if b.AResource(rh, dnsmessage.AResource{A: a.As4()}) != nil {
					return nil, false
				}
				n++
			case a.Is6() && (q.Type == dnsmessage.TypeAAAA || q.Type == dnsmessage.TypeALL):
				rh.Type = dnsmessage.TypeAAAA
				if b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()}) != nil {
					return nil, false
				}
				n++
			}
		}
		if edns > 0 {
			var opt dnsmessage.ResourceHeader
			if opt.SetEDNS0(ednsAnswerSize, dnsmessage.RCodeSuccess, false) != nil ||
				b.StartAdditionals() != nil || b.OPTResource(opt, dnsmessage.OPTResource{}) != nil {
				return nil, false
			}
		}
		out, err := b.Finish()
		return out, err == nil
	}
	out, ok := build(len(addrs))
	if !ok {
		return reply(h, &q, dnsmessage.RCodeServerFailure, false)
	}
	if len(out) <= limit {
		return out
	}
	// Too large for UDP: truncated, so that the client asks again over TCP (RFC 1035 4.2.1).
	for max := len(addrs) - 1; max >= 0; max-- {
		if out, ok = build(max); ok && len(out) <= limit {
			out[2] |= 0x02 // TC
			return out
		}
	}
	return reply(h, &q, dnsmessage.RCodeServerFailure, false)
}
