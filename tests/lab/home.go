package lab

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LabPlanet is a private planet (world 149604618, made for the lab by zerotier-one 1.14.1 tools)
// whose only root is Identity(1) at LabRootAddr/LabRootPort. Nodes with it in their home
// talk only to that root, so no ZeroTier traffic leaves the lab.
//
//go:embed testdata/lab-planet.bin
var LabPlanet []byte

// Where LabPlanet's root listens: run it on a host with this address.
const (
	LabRootAddr = "192.0.2.1"
	LabRootPort = 19993
)

//go:embed testdata/identities.txt
var identities string

// Identity returns test identity n (1 to 8) in secret form ("addr:0:public:private"), all
// generated and validated by zerotier-idtool 1.14.1. Identity(1) is LabPlanet's root; the
// rest are free for members, which then have addresses known before they start.
func Identity(n int) string {
	lines := strings.Fields(identities)
	if n < 1 || n > len(lines) {
		panic(fmt.Sprintf("lab.Identity(%d): there are %d", n, len(lines)))
	}
	return lines[n-1]
}

// Home is a ZeroTier home directory in zerotier-one's layout, which ztnc-run uses too:
// identity.secret / identity.public, planet, networks.d/<nwid>.conf (networks joined at start).
type Home struct {
	Dir string
}

// NewHome returns an empty home in a temporary directory removed after the test.
func NewHome(t T) *Home {
	t.Helper()
	return &Home{Dir: t.TempDir()}
}

// NewLabHome returns a home with LabPlanet and, unless identity is "", that identity (else the
// node generates one at first start).
func NewLabHome(t T, identity string) *Home {
	t.Helper()
	h := NewHome(t)
	h.SetPlanet(t, LabPlanet)
	if identity != "" {
		h.SetIdentity(t, identity)
	}
	return h
}

// Path joins elem to the home directory.
func (h *Home) Path(elem ...string) string {
	return filepath.Join(append([]string{h.Dir}, elem...)...)
}

// SetIdentity writes identity.secret (mode 0600) and identity.public from a secret identity
// string.
func (h *Home) SetIdentity(t T, secret string) {
	t.Helper()
	f := strings.Split(strings.TrimSpace(secret), ":")
	if len(f) != 4 || len(f[0]) != 10 {
		t.Fatalf("home %s: %q is not a secret identity (addr:0:public:private)", h.Dir, secret)
	}
	h.write(t, "identity.secret", strings.Join(f, ":"), 0o600)
	h.write(t, "identity.public", strings.Join(f[:3], ":"), 0o644)
}

// SetPlanet writes the planet file (a serialized World).
func (h *Home) SetPlanet(t T, world []byte) {
	t.Helper()
	h.write(t, "planet", string(world), 0o644)
}

// PreJoin creates networks.d/<nwid>.conf, which makes the node join nwid when it starts.
func (h *Home) PreJoin(t T, nwid string) {
	t.Helper()
	if err := os.MkdirAll(h.Path("networks.d"), 0o755); err != nil {
		t.Fatalf("home: %v", err)
	}
	h.write(t, filepath.Join("networks.d", nwid+".conf"), "\n", 0o600)
}

// Address returns the node address from identity.public, or "" when there is none yet.
func (h *Home) Address() string {
	b, err := os.ReadFile(h.Path("identity.public"))
	if err != nil {
		return ""
	}
	addr, _, _ := strings.Cut(string(b), ":")
	return addr
}

func (h *Home) write(t T, name, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(h.Path(name), []byte(data), mode); err != nil {
		t.Fatalf("home: %v", err)
	}
}
