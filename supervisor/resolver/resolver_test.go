package resolver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/ztnc/ztnc/netstack"
)

// staticNet is a Network with fixed names, prefixes and DNS settings; exchange answers for
// its servers.
type staticNet struct {
	domain   string
	servers  []netip.Addr
	names    map[string][]netip.Addr
	prefixes []netip.Prefix
	exchange func(context.Context, netip.AddrPort, []byte, bool) ([]byte, error)
}

func (n *staticNet) DNS() (string, []netip.Addr) { return n.domain, n.servers }
func (n *staticNet) Lookup(name string) ([]netip.Addr, bool) {
	a, ok := n.names[name]
	return a, ok
}
func (n *staticNet) Names(addr netip.Addr) ([]string, bool) {
	if !slices.ContainsFunc(n.prefixes, func(p netip.Prefix) bool { return p.Contains(addr) }) {
		return nil, false
	}
	var out []string
	for name, addrs := range n.names {
		if slices.Contains(addrs, addr) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, true
}
func (n *staticNet) Exchange(ctx context.Context, s netip.AddrPort, m []byte, tcp bool) ([]byte, error) {
	return n.exchange(ctx, s, m, tcp)
}

func query(t testing.TB, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0x4242, RecursionDesired: true})
	b.StartQuestions()
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}); err != nil {
		t.Fatal(err)
	}
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// parse returns an answer's rcode and addresses.
func parse(t testing.TB, msg []byte) (dnsmessage.RCode, []netip.Addr) {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(msg); err != nil {
		t.Fatalf("unpack answer: %v", err)
	}
	if m.ID != 0x4242 || !m.Response {
		t.Fatalf("header %+v", m.Header)
	}
	var out []netip.Addr
	for _, a := range m.Answers {
		switch r := a.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(r.A))
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(r.AAAA))
		}
	}
	return m.RCode, out
}

// answerWith is a DNS server's exchange that answers every A query with addr.
func answerWith(addr netip.Addr) func(context.Context, netip.AddrPort, []byte, bool) ([]byte, error) {
	return func(_ context.Context, _ netip.AddrPort, q []byte, _ bool) ([]byte, error) {
		var p dnsmessage.Parser
		h, err := p.Start(q)
		if err != nil {
			return nil, err
		}
		qs, _ := p.AllQuestions()
		return answer(h, qs[0], []netip.Addr{addr}, 0, 512), nil
	}
}

func TestHandle(t *testing.T) {
	web4, web6 := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("fd00::1")
	n := &staticNet{
		domain: "corp.example", servers: []netip.Addr{netip.MustParseAddr("10.9.0.53")},
		names:    map[string][]netip.Addr{"web.internal": {web4, web6}},
		exchange: answerWith(netip.MustParseAddr("10.9.0.80")),
	}
	empty := &staticNet{domain: "empty.example", names: map[string][]netip.Addr{}}
	upstream := answerWith(netip.MustParseAddr("192.0.2.80"))
	for _, tc := range []struct {
		name     string
		q        string
		typ      dnsmessage.Type
		upstream bool
		rcode    dnsmessage.RCode
		want     []netip.Addr
	}{
		{"A of a network name", "web.internal.", dnsmessage.TypeA, false, dnsmessage.RCodeSuccess, []netip.Addr{web4}},
		{"case-insensitive AAAA", "WEB.Internal.", dnsmessage.TypeAAAA, false, dnsmessage.RCodeSuccess, []netip.Addr{web6}},
		{"no data", "web.internal.", dnsmessage.TypeMX, false, dnsmessage.RCodeSuccess, nil},
		{"network domain: its servers", "app.corp.example.", dnsmessage.TypeA, false, dnsmessage.RCodeSuccess, []netip.Addr{netip.MustParseAddr("10.9.0.80")}},
		{"domain without servers", "x.empty.example.", dnsmessage.TypeA, false, dnsmessage.RCodeNameError, nil},
		{"unknown built-in name", "0123456789.8056c2e21c000001.zt.", dnsmessage.TypeA, false, dnsmessage.RCodeNameError, nil},
		{"outside, no host access", "example.com.", dnsmessage.TypeA, false, dnsmessage.RCodeRefused, nil},
		{"outside, host access", "example.com.", dnsmessage.TypeA, true, dnsmessage.RCodeSuccess, []netip.Addr{netip.MustParseAddr("192.0.2.80")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Networks: func() []Network { return []Network{n, empty} }}
			if tc.upstream {
				cfg.Upstream = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}
				cfg.Exchange = upstream
			}
			a := New(cfg).Handle(context.Background(), query(t, tc.q, tc.typ), false)
			rcode, addrs := parse(t, a)
			if rcode != tc.rcode || len(addrs) != len(tc.want) || (len(addrs) > 0 && addrs[0] != tc.want[0]) {
				t.Fatalf("rcode %v addrs %v, want %v %v", rcode, addrs, tc.rcode, tc.want)
			}
		})
	}
}

// TestTruncation: an answer too large for UDP is truncated (TC), and complete over TCP.
func TestTruncation(t *testing.T) {
	var many []netip.Addr
	for i := range 60 {
		many = append(many, netip.AddrFrom4([4]byte{10, 9, 1, byte(i)}))
	}
	r := New(Config{Networks: func() []Network {
		return []Network{&staticNet{names: map[string][]netip.Addr{"big.internal": many}}}
	}})
	udp := r.Handle(context.Background(), query(t, "big.internal.", dnsmessage.TypeA), false)
	var m dnsmessage.Message
	if err := m.Unpack(udp); err != nil || !m.Truncated || len(udp) > 512 {
		t.Fatalf("UDP answer: %d bytes, truncated %v, %v", len(udp), m.Truncated, err)
	}
	tcp := r.Handle(context.Background(), query(t, "big.internal.", dnsmessage.TypeA), true)
	if _, addrs := parse(t, tcp); len(addrs) != 60 {
		t.Fatalf("TCP answer has %d addresses", len(addrs))
	}
}

// TestServeAndExchangeOverStacks: the responder serves on one stack of a hub (UDP and TCP);
// StackExchange from another stack reaches it, and HostExchange reaches a host server.
func TestServeAndExchangeOverStacks(t *testing.T) {
	hub := netstack.NewHub()
	mk := func(n byte, addr string) *netstack.Stack {
		st, err := netstack.New(hub.NewPort([6]byte{2, 0, 0, 0, 0, n}, 2800), netstack.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		if err := st.SetAddresses([]netip.Prefix{netip.MustParsePrefix(addr)}); err != nil {
			t.Fatal(err)
		}
		return st
	}
	server, client := mk(1, "192.0.2.1/24"), mk(2, "192.0.2.2/24")
	web := netip.MustParseAddr("192.0.2.80")
	r := New(Config{Networks: func() []Network {
		return []Network{&staticNet{names: map[string][]netip.Addr{"web.internal": {web}}}}
	}})
	srv, addrs, err := Listen(r, server, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// The responder listens on the server stack's loopback; from the same stack, both ways.
	ex := StackExchange(server)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		to  netip.AddrPort
		tcp bool
	}{{addrs.UDP4, false}, {addrs.TCP4, true}, {addrs.UDP6, false}, {addrs.TCP6, true}} {
		a, err := ex(ctx, tc.to, query(t, "web.internal.", dnsmessage.TypeA), tc.tcp)
		if err != nil {
			t.Fatalf("exchange with %v (tcp %v): %v", tc.to, tc.tcp, err)
		}
		if _, got := parse(t, a); len(got) != 1 || got[0] != web {
			t.Fatalf("got %v", got)
		}
	}
	// Across the hub: a DNS server program on the server stack, asked from the client stack.
	ep, err := server.NewUDP(false)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if err := ep.Bind(netip.MustParseAddrPort("192.0.2.1:53")); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 512)
		for ctx.Err() == nil {
			n, _, h, err := ep.ReadFrom(buf, false)
			if err != nil {
				time.Sleep(time.Millisecond)
				continue
			}
			if a := r.Handle(ctx, buf[:n], false); a != nil {
				ep.WriteTo(a, h.Remote)
			}
		}
	}()
	a, err := StackExchange(client)(ctx, netip.MustParseAddrPort("192.0.2.1:53"), query(t, "web.internal.", dnsmessage.TypeA), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, got := parse(t, a); len(got) != 1 || got[0] != web {
		t.Fatalf("across the hub: %v", got)
	}

	// HostExchange: a server on host loopback.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		n, from, err := pc.ReadFrom(buf)
		if err == nil {
			pc.WriteTo(r.Handle(ctx, buf[:n], false), from)
		}
	}()
	a, err = HostExchange(ctx, pc.LocalAddr().(*net.UDPAddr).AddrPort(), query(t, "web.internal.", dnsmessage.TypeA), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, got := parse(t, a); len(got) != 1 || got[0] != web {
		t.Fatalf("host: %v", got)
	}
}

func TestReverseAddr(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // "" for none
	}{
		{"1.100.51.198.in-addr.arpa", "198.51.100.1"},
		{"0.0.0.0.in-addr.arpa", "0.0.0.0"},
		{"255.255.255.255.in-addr.arpa", "255.255.255.255"},
		{"1.100.51.in-addr.arpa", ""},       // a zone, not an address
		{"1.1.100.51.198.in-addr.arpa", ""}, // too long
		{"256.100.51.198.in-addr.arpa", ""},
		{"01.100.51.198.in-addr.arpa", ""},
		{"x.100.51.198.in-addr.arpa", ""},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "2001:db8::1"},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.ip6.arpa", ""},   // 31 nibbles
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.g.ip6.arpa", ""}, // not hex
		{"10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", ""},  // two-digit label
		{"web.internal", ""},
		{"in-addr.arpa", ""},
	} {
		got, ok := reverseAddr(tc.name)
		if tc.want == "" {
			if ok {
				t.Errorf("reverseAddr(%q) = %v, want none", tc.name, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("reverseAddr(%q) = %v, %v; want %s", tc.name, got, ok, tc.want)
		}
	}
}

// TestHandlePTR: reverse lookups of a network's addresses are answered from its names; an
// address of the network without one does not exist (or is asked of the network's own DNS
// servers), and other addresses go where other names go.
func TestHandlePTR(t *testing.T) {
	local := &staticNet{
		names: map[string][]netip.Addr{
			"web.internal": {netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")},
			"www.internal": {netip.MustParseAddr("198.51.100.1")},
		},
		prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/64")},
	}
	var asked []netip.AddrPort
	withServers := &staticNet{
		servers:  []netip.Addr{netip.MustParseAddr("10.9.0.53")},
		prefixes: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/24")},
		exchange: func(_ context.Context, s netip.AddrPort, q []byte, _ bool) ([]byte, error) {
			asked = append(asked, s)
			var p dnsmessage.Parser
			h, err := p.Start(q)
			if err != nil {
				return nil, err
			}
			qs, _ := p.AllQuestions()
			return ptrAnswer(h, qs[0], []string{"db.corp.example"}, 0), nil
		},
	}
	r := New(Config{Networks: func() []Network { return []Network{local, withServers} }})
	for _, tc := range []struct {
		q     string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		want  []string
	}{
		{"1.100.51.198.in-addr.arpa.", dnsmessage.TypePTR, dnsmessage.RCodeSuccess, []string{"web.internal.", "www.internal."}},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", dnsmessage.TypePTR, dnsmessage.RCodeSuccess, []string{"web.internal."}},
		{"9.100.51.198.in-addr.arpa.", dnsmessage.TypePTR, dnsmessage.RCodeNameError, nil},
		{"7.0.9.10.in-addr.arpa.", dnsmessage.TypePTR, dnsmessage.RCodeSuccess, []string{"db.corp.example."}},
		{"1.2.0.192.in-addr.arpa.", dnsmessage.TypePTR, dnsmessage.RCodeRefused, nil}, // not a network's, no host access
	} {
		var m dnsmessage.Message
		if err := m.Unpack(r.Handle(context.Background(), query(t, tc.q, tc.typ), false)); err != nil {
			t.Fatalf("%s: %v", tc.q, err)
		}
		var got []string
		for _, a := range m.Answers {
			if p, ok := a.Body.(*dnsmessage.PTRResource); ok {
				got = append(got, p.PTR.String())
			}
		}
		if m.RCode != tc.rcode || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v %v, want %v %v", tc.q, m.RCode, got, tc.rcode, tc.want)
		}
	}
	if len(asked) != 1 || asked[0] != netip.MustParseAddrPort("10.9.0.53:53") {
		t.Errorf("asked the network's servers %v", asked)
	}
}

// FuzzReverseAddr: any name parses to an address or to none, and an address names itself back.
func FuzzReverseAddr(f *testing.F) {
	f.Add("1.100.51.198.in-addr.arpa")
	f.Add("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa")
	f.Fuzz(func(t *testing.T, name string) {
		a, ok := reverseAddr(name)
		if !ok {
			return
		}
		if !a.IsValid() {
			t.Fatalf("%q: invalid address", name)
		}
		if b, ok := reverseAddr(reverseName(a)); !ok || b != a {
			t.Fatalf("%q: %v names %q, which parses to %v", name, a, reverseName(a), b)
		}
	})
}

// reverseName is a's reverse-lookup name, as clients make it.
func reverseName(a netip.Addr) string {
	var sb strings.Builder
	if a.Is4() {
		b := a.As4()
		for i := 3; i >= 0; i-- {
			fmt.Fprintf(&sb, "%d.", b[i])
		}
		return sb.String() + "in-addr.arpa"
	}
	b := a.As16()
	for i := 15; i >= 0; i-- {
		fmt.Fprintf(&sb, "%x.%x.", b[i]&0xf, b[i]>>4)
	}
	return sb.String() + "ip6.arpa"
}

// FuzzHandle: any message, over UDP or TCP, gets no answer or a well-formed one; never a
// panic or a hang.
func FuzzHandle(f *testing.F) {
	f.Add(query(f, "web.internal.", dnsmessage.TypeA), false)
	f.Add(query(f, "1.0.9.10.in-addr.arpa.", dnsmessage.TypePTR), false)
	f.Add(query(f, "x.corp.example.", dnsmessage.TypeAAAA), true)
	f.Add(query(f, "example.com.", dnsmessage.TypeALL), false)
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0}, false)
	n := &staticNet{
		domain: "corp.example", servers: []netip.Addr{netip.MustParseAddr("10.9.0.53")},
		names:    map[string][]netip.Addr{"web.internal": {netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("fd00::1")}},
		prefixes: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/24"), netip.MustParsePrefix("fd00::/64")},
		exchange: answerWith(netip.MustParseAddr("10.9.0.80")),
	}
	r := New(Config{Networks: func() []Network { return []Network{n} }})
	f.Fuzz(func(t *testing.T, msg []byte, tcp bool) {
		a := r.Handle(context.Background(), msg, tcp)
		if a == nil {
			return
		}
		var m dnsmessage.Message
		if err := m.Unpack(a); err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		if !tcp && len(a) > 65535 {
			t.Fatalf("answer of %d bytes", len(a))
		}
	})
}
