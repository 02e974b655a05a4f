package lab

import (
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestNewNetwork(t *testing.T) {
	n := NewNetwork("n", netip.MustParsePrefix("203.0.113.77/24"))
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"n","private":true,"enableBroadcast":true,"v4AssignMode":{"zt":true},` +
		`"v6AssignMode":{"zt":false,"rfc4193":false,"6plane":false},"routes":[{"target":"203.0.113.0/24","via":null}],` +
		`"ipAssignmentPools":[{"ipRangeStart":"203.0.113.1","ipRangeEnd":"203.0.113.254"}]}`
	if string(b) != want {
		t.Errorf("NewNetwork JSON\n got %s\nwant %s", b, want)
	}
	n = NewNetwork("n", netip.MustParsePrefix("198.51.100.128/25"))
	if p := n.IPAssignmentPools[0]; p.Start != "198.51.100.129" || p.End != "198.51.100.254" {
		t.Errorf("/25 pool = %+v", p)
	}
}

func TestHome(t *testing.T) {
	h := NewLabHome(t, Identity(2))
	if got := h.Address(); got != "8604bca100" {
		t.Errorf("Address() = %q", got)
	}
	pub, _ := os.ReadFile(h.Path("identity.public"))
	if strings.Count(string(pub), ":") != 2 || !strings.HasPrefix(Identity(2), string(pub)+":") {
		t.Errorf("identity.public = %q", pub)
	}
	if fi, err := os.Stat(h.Path("identity.secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("identity.secret: %v %v", fi, err)
	}
	if planet, _ := os.ReadFile(h.Path("planet")); len(planet) != 257 || planet[0] != 1 {
		t.Errorf("planet: %d bytes", len(planet))
	}
	h.PreJoin(t, "d9d826a22363a18e")
	if b, err := os.ReadFile(h.Path("networks.d", "d9d826a22363a18e.conf")); err != nil || string(b) != "\n" {
		t.Errorf("networks.d: %q %v", b, err)
	}
	if addr, _, _ := strings.Cut(Identity(1), ":"); addr != "d9d826a223" {
		t.Errorf("Identity(1) = %s, want the lab planet's root", addr)
	}
	if got := NewHome(t).Address(); got != "" {
		t.Errorf("empty home Address() = %q", got)
	}
}
