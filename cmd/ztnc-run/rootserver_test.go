package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/tests/lab"
	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/world"
)

// A joined network is the stack's Ethernet port.
var _ netstack.Port = (*zt.Network)(nil)

func TestRootServerWritesPlanetAndServes(t *testing.T) {
	dir := t.TempDir()
	ids, err := os.ReadFile(filepath.Join(vectors, "identities.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(ids))
	// A known identity saves the test the identity generation.
	if err := os.WriteFile(filepath.Join(dir, "identity.secret"), []byte(lines[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	port := lab.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRootServerCmd()
	cmd.Flags().Bool("verbose", false, "")
	cmd.Flags().String("log-format", "text", "")
	cmd.SetArgs([]string{"--home", dir, "--bind", "127.0.0.1", "--port", strconv.Itoa(port)})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("root command: %v", err)
		}
	}()

	var planet []byte
	deadline := time.Now().Add(10 * time.Second)
	for planet == nil {
		if time.Now().After(deadline) {
			t.Fatal("no planet written")
		}
		time.Sleep(20 * time.Millisecond)
		planet, _ = os.ReadFile(filepath.Join(dir, "planet"))
	}
	w, _, err := world.Parse(planet)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := identity.Parse(lines[0])
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	if w.Type != world.TypePlanet || len(w.Roots) != 1 || w.Roots[0].Identity.Address() != root.Address() ||
		len(w.Roots[0].StableEndpoints) != 1 || w.Roots[0].StableEndpoints[0].AddrPort != want {
		t.Fatalf("planet: %+v", w)
	}
	if err := w.Verify(&w.UpdatesMustBeSignedBy); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "world.secret")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("world.secret: %v %v", st, err)
	}

	// A node given the planet comes online through the root.
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "identity.secret"), []byte(lines[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := zt.NewNode(context.Background(), zt.Config{Home: home, Port: zt.PortAny, Planet: planet,
		Bind: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Start()
	deadline = time.Now().Add(20 * time.Second)
	for !n.Online() {
		if time.Now().After(deadline) {
			t.Fatalf("node not online through the root; peers %+v", n.Peers())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
