package main

import (
	"strings"
	"testing"
)

// TestLocalPrefixes: --local values, with the IPv6 prefix derived from the first IPv4 address
// when none is given.
func TestLocalPrefixes(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string // prefixes, space-separated; "" for an error
	}{
		{[]string{"198.51.100.1/24"}, "198.51.100.1/24 fd7a:746e:6300::c633:6401/64"},
		{[]string{"10.9.0.1/24"}, "10.9.0.1/24 fd7a:746e:6300::a09:1/64"},
		{[]string{"198.51.100.1/24,203.0.113.1/24"}, "198.51.100.1/24 203.0.113.1/24 fd7a:746e:6300::c633:6401/64"},
		{[]string{"198.51.100.1/24", " 2001:db8::1/64"}, "198.51.100.1/24 2001:db8::1/64"},
		{[]string{"2001:db8::1/64"}, "2001:db8::1/64"},
		{[]string{"198.51.100.1"}, ""},
		{[]string{"::ffff:198.51.100.1/120"}, ""},
		{[]string{"bogus"}, ""},
	} {
		got, err := localPrefixes(c.in)
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if c.want == "" {
			if err == nil {
				t.Errorf("%q: accepted as %v", c.in, got)
			}
			continue
		}
		if err != nil || strings.Join(s, " ") != c.want {
			t.Errorf("%q: %v, %v; want %s", c.in, s, err, c.want)
		}
	}
}
