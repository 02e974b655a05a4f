package resolver

import (
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// Reverse lookups (PTR) of the virtual networks' addresses are answered here too, from the
// names the networks know (Network.Names). Forwarded, they would ask the host's resolvers
// about private addresses that are none of their business, and wait for their timeout where
// the host has no resolver that answers (a container without a network): a server that looks
// up each client's name (MariaDB without skip-name-resolve, sshd with UseDNS) would stall 5 s
// per connection.

// reverseAddr parses a reverse-lookup name ("4.3.2.1.in-addr.arpa", or 32 nibbles under
// "ip6.arpa"; lower case, without the final dot) into the address it names.
func reverseAddr(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			v, ok := decimalOctet(l)
			if !ok {
				return netip.Addr{}, false
			}
			b[3-i] = v
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		if len(rest) != 63 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i := range 32 {
			if i > 0 && rest[2*i-1] != '.' {
				return netip.Addr{}, false
			}
			v, ok := hexNibble(rest[2*i])
			if !ok {
				return netip.Addr{}, false
			}
			// Nibble i counts from the end of the address.
			k := 31 - i
			b[k/2] |= v << (4 * (1 - k%2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// decimalOctet parses a label of 1-3 digits, 0-255, without leading zeros.
func decimalOctet(l string) (byte, bool) {
	if l == "" || len(l) > 3 || (len(l) > 1 && l[0] == '0') {
		return 0, false
	}
	v := 0
	for _, c := range l {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = 10*v + int(c-'0')
	}
	return byte(v), v <= 255
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// ptrAnswer answers q with a PTR record per name.
func ptrAnswer(h dnsmessage.Header, q dnsmessage.Question, names []string, edns int) []byte {
	b := dnsmessage.NewBuilder(nil, responseHeader(h, dnsmessage.RCodeSuccess, true))
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET, TTL: answerTTL}
	for _, n := range names {
		ptr, err := dnsmessage.NewName(n + ".")
		if err != nil {
			continue
		}
		if b.PTRResource(rh, dnsmessage.PTRResource{PTR: ptr}) != nil {
			return reply(h, &q, dnsmessage.RCodeServerFailure, false)
		}
	}
	if edns > 0 {
		var opt dnsmessage.ResourceHeader
		if opt.SetEDNS0(ednsAnswerSize, dnsmessage.RCodeSuccess, false) != nil ||
			b.StartAdditionals() != nil || b.OPTResource(opt, dnsmessage.OPTResource{}) != nil {
			return reply(h, &q, dnsmessage.RCodeServerFailure, false)
		}
	}
	out, err := b.Finish()
	if err != nil {
		return reply(h, &q, dnsmessage.RCodeServerFailure, false)
	}
	return out
}
