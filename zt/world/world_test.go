package world

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

func TestVectorPlanets(t *testing.T) {
	earthFile, err := os.ReadFile("../testdata/zt1/earth-planet.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(earthFile, EarthPlanet) {
		t.Fatal("embedded EarthPlanet differs from the vector")
	}
	for _, tc := range []struct {
		file      string
		timestamp uint64
		roots     map[string][]string
	}{
		{"earth-planet.bin", 1644592324813, map[string][]string{
			"cafe9efeb9": {"104.194.8.134/9993", "2605:9880:200:1200:30:571:e34:51/9993"},
			"778cde7190": {"103.195.103.66/9993", "2605:9880:400:c3:254:f2bc:a1f7:19/9993"},
			"62f865ae71": {"50.7.252.138/9993", "2001:49f0:d0db:2::2/9993"},
			"cafe04eba9": {"84.17.53.155/9993", "2a02:6ea0:d405::9993/9993"},
		}},
		{"lab-planet.bin", 1767225600000, map[string][]string{"d9d826a223": {"192.0.2.1/19993"}}},
	} {
		raw, err := os.ReadFile("../testdata/zt1/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		w, n, err := Parse(raw)
		if err != nil || n != len(raw) {
			t.Fatalf("%s: n=%d/%d %v", tc.file, n, len(raw), err)
		}
		if w.Type != TypePlanet || w.ID != EarthID || w.Timestamp != tc.timestamp || len(w.Roots) != len(tc.roots) {
			t.Errorf("%s: type %d id %d ts %d roots %d", tc.file, w.Type, w.ID, w.Timestamp, len(w.Roots))
		}
		for _, r := range w.Roots {
			want := tc.roots[r.Identity.Address().String()]
			var got []string
			for _, ep := range r.StableEndpoints {
				got = append(got, ep.String())
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s: root %s endpoints %v, want %v", tc.file, r.Identity.Address(), got, want)
			}
			if err := r.Identity.Validate(); err != nil {
				t.Errorf("%s: root identity: %v", tc.file, err)
			}
		}
		// Each planet is signed by the key it names for its successor.
		if err := w.Verify(&w.UpdatesMustBeSignedBy); err != nil {
			t.Errorf("%s: %v", tc.file, err)
		}
		if !bytes.Equal(w.Bytes(), raw) {
			t.Errorf("%s: re-serialization differs", tc.file)
		}
		bad := append([]byte{}, raw...)
		bad[len(bad)-3] ^= 1 // an endpoint byte: covered by the signature
		if w2, _, err := Parse(bad); err != nil || w2.Verify(&w.UpdatesMustBeSignedBy) == nil {
			t.Errorf("%s: tampered planet verifies (%v)", tc.file, err)
		}
		for cut := 0; cut < len(raw); cut += 13 {
			if _, _, err := Parse(raw[:cut]); !errors.Is(err, ErrBadWorld) {
				t.Errorf("%s truncated to %d: %v", tc.file, cut, err)
			}
		}
	}
}

// A new planet for our own root, and the update rules.
func TestNewPlanetAndUpdates(t *testing.T) {
	b, _ := os.ReadFile("../testdata/zt1/identities.txt")
	root, err := identity.Parse(strings.Fields(string(b))[0])
	if err != nil {
		t.Fatal(err)
	}
	pub1, priv1, _ := identity.GenerateKeyPair()
	pub2, priv2, _ := identity.GenerateKeyPair()
	roots := []Root{{Identity: root.Public(), StableEndpoints: []ztaddr.InetAddress{ztaddr.InetAddressOf(netip.MustParseAddrPort("192.0.2.1:19993"))}}}
	w1, err := New(TypePlanet, 7, 1000, pub2, roots, &priv1)
	if err != nil {
		t.Fatal(err)
	}
	if w1.Verify(&pub1) != nil || w1.Verify(&pub2) == nil || !w1.HasRoot(root.Address()) || w1.HasRoot(1) {
		t.Fatal("signature/roots of a new planet")
	}
	back, n, err := Parse(w1.Bytes())
	if err != nil || n != len(w1.Bytes()) || !bytes.Equal(back.Bytes(), w1.Bytes()) {
		t.Fatalf("round trip: %v", err)
	}
	w2, _ := New(TypePlanet, 7, 2000, pub2, roots, &priv2) // signed with the key w1 named
	w2bad, _ := New(TypePlanet, 7, 2000, pub2, roots, &priv1)
	w2old, _ := New(TypePlanet, 7, 500, pub2, roots, &priv2)
	w2other, _ := New(TypePlanet, 8, 2000, pub2, roots, &priv2)
	if !w1.ShouldBeReplacedBy(w2) || w1.ShouldBeReplacedBy(w2bad) || w1.ShouldBeReplacedBy(w2old) || w1.ShouldBeReplacedBy(w2other) {
		t.Error("replacement rule")
	}
	if !(&World{}).ShouldBeReplacedBy(w2bad) {
		t.Error("a null world must accept anything")
	}
	if _, err := New(TypePlanet, 7, 1, pub1, make([]Root, 5), &priv1); !errors.Is(err, ErrBadWorld) {
		t.Error("5 roots accepted")
	}
}

// A moon as zerotier-idtool genmoon would make it from initmoon's output.
func TestMoonFromInitmoon(t *testing.T) {
	raw, _ := os.ReadFile("../testdata/zt1/initmoon-id1.json")
	var spec struct {
		ID                    string `json:"id"`
		SigningKey            string `json:"signingKey"`
		SigningKeySecret      string `json:"signingKey_SECRET"`
		UpdatesMustBeSignedBy string `json:"updatesMustBeSignedBy"`
		Roots                 []struct {
			Identity string `json:"identity"`
		} `json:"roots"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	var pub, umsb identity.PublicKey
	var priv identity.PrivateKey
	hex.Decode(pub[:], []byte(spec.SigningKey))
	hex.Decode(umsb[:], []byte(spec.UpdatesMustBeSignedBy))
	hex.Decode(priv[:], []byte(spec.SigningKeySecret))
	if derived, err := priv.Public(); err != nil || derived != pub {
		t.Fatal("initmoon's signing key pair does not match")
	}
	seed, err := identity.Parse(spec.Roots[0].Identity)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ztaddr.ParseAddress(spec.ID)
	m, err := New(TypeMoon, uint64(id), 1767225600000, umsb, []Root{{Identity: seed}}, &priv)
	if err != nil {
		t.Fatal(err)
	}
	enc := m.Bytes()
	if len(enc) != 1+8+8+64+96+1+71+1+2 {
		t.Errorf("moon length %d", len(enc))
	}
	back, _, err := Parse(enc)
	if err != nil || back.Verify(&pub) != nil || !bytes.Equal(back.Bytes(), enc) {
		t.Fatalf("moon round trip: %v", err)
	}
}
