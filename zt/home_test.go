package zt

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztnc/ztnc/zt/world"
)

func TestDefaultHome(t *testing.T) {
	tests := []struct {
		ztnc, xdg, home string
		want            string
	}{
		{"/srv/ztnc", "/x", "/h", "/srv/ztnc"},
		{"", "/x", "/h", "/x/ztnc"},
		{"", "", "/h", "/h/.local/state/ztnc"},
	}
	for _, tc := range tests {
		t.Setenv("ZTNC_HOME", tc.ztnc)
		t.Setenv("XDG_STATE_HOME", tc.xdg)
		t.Setenv("HOME", tc.home)
		if got, err := DefaultHome(); err != nil || got != tc.want {
			t.Errorf("ZTNC_HOME=%q XDG_STATE_HOME=%q HOME=%q: %q, %v; want %q", tc.ztnc, tc.xdg, tc.home, got, err, tc.want)
		}
	}
}

func TestRootPlanet(t *testing.T) {
	ids := testIdentities(t)
	h := home(t.TempDir())
	ep1 := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:9993")}
	w1, err := h.ensureRootPlanet(ids[0], ep1)
	if err != nil {
		t.Fatal(err)
	}
	if w1.ID == world.EarthID || len(w1.Roots) != 1 || !w1.Roots[0].Identity.Equal(ids[0].Public()) ||
		w1.Roots[0].StableEndpoints[0].AddrPort != ep1[0] || w1.Verify(&w1.UpdatesMustBeSignedBy) != nil {
		t.Fatalf("planet: %+v", w1)
	}
	// Same endpoints: the same planet.
	if w, err := h.ensureRootPlanet(ids[0], ep1); err != nil || w.Timestamp != w1.Timestamp {
		t.Fatalf("second start made a new planet: %v", err)
	}
	// New endpoints: a newer planet of the same world that nodes holding the old one accept.
	ep2 := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:9993"), netip.MustParseAddrPort("[2001:db8::1]:9993")}
	w2, err := h.ensureRootPlanet(ids[0], ep2)
	if err != nil {
		t.Fatal(err)
	}
	if w2.ID != w1.ID || !w1.ShouldBeReplacedBy(w2) || len(w2.Roots[0].StableEndpoints) != 2 {
		t.Fatalf("updated planet %+v does not replace %+v", w2, w1)
	}
	b, _ := os.ReadFile(filepath.Join(string(h), "planet"))
	if w, _, err := world.Parse(b); err != nil || w.Timestamp != w2.Timestamp {
		t.Fatalf("planet file not updated: %v", err)
	}
	// A planet signed with another key is not overwritten.
	other := home(t.TempDir())
	if _, err := other.ensureRootPlanet(ids[1], ep1); err != nil {
		t.Fatal(err)
	}
	os.Rename(filepath.Join(string(other), "planet"), filepath.Join(string(h), "planet"))
	if _, err := h.ensureRootPlanet(ids[0], ep1); err == nil {
		t.Fatal("replaced a planet signed with another world key")
	}
	if _, err := h.ensureRootPlanet(ids[0], nil); err == nil {
		t.Fatal("a planet without endpoints")
	}
}

func TestBrokenIdentityFileRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "identity.secret"), []byte("not an identity"), 0o600)
	if _, err := NewNode(t.Context(), Config{Home: dir, Port: PortAny}); err == nil {
		t.Fatal("NewNode accepted a broken identity.secret")
	}
}

// TestBrokenPlanetFileNamed: a home whose planet file is broken stops the node with an error
// that names the file.
func TestBrokenPlanetFileNamed(t *testing.T) {
	dir := homeWith(t, testIdentities(t)[0])
	path := filepath.Join(dir, "planet")
	if err := os.WriteFile(path, []byte("not a planet"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := NewNode(t.Context(), Config{Home: dir, Port: PortAny, Bind: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("NewNode with a broken planet file: %v, want an error naming %s", err, path)
	}
}
