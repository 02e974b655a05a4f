package identity

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

const vectors = "../testdata/zt1"

func loadIdentities(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors, "identities.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	if len(lines) != 8 {
		t.Fatalf("identities.txt has %d lines, want 8", len(lines))
	}
	return lines
}

func TestVectorIdentities(t *testing.T) {
	for _, line := range loadIdentities(t) {
		id, err := Parse(line)
		if err != nil {
			t.Fatalf("%s: %v", line[:10], err)
		}
		if err := id.Validate(); err != nil {
			t.Errorf("%s: %v", line[:10], err)
		}
		if got := id.SecretString(); got != line {
			t.Errorf("secret string round trip:\n got %s\nwant %s", got, line)
		}
		pubLine := line[:strings.LastIndexByte(line, ':')]
		if got := id.String(); got != pubLine {
			t.Errorf("public string = %s, want %s", got, pubLine)
		}
		pub, err := Parse(pubLine + "\n")
		if err != nil || pub.HasPrivate() || !pub.Equal(id) {
			t.Errorf("public form parse: %v", err)
		}
		for _, withPriv := range []bool{false, true} {
			bin := id.AppendBinary(nil, withPriv)
			want := PublicBinarySize
			if withPriv {
				want = SecretBinarySize
			}
			if len(bin) != want {
				t.Fatalf("binary length %d, want %d", len(bin), want)
			}
			back, n, err := Unmarshal(append(bin, 0xee))
			if err != nil || n != want || back.SecretString() != id.SecretString() && withPriv || !back.Equal(id) {
				t.Errorf("binary round trip (private %v): n=%d err=%v", withPriv, n, err)
			}
			if !bytes.Equal(back.AppendBinary(nil, withPriv), bin) {
				t.Errorf("binary re-encode differs")
			}
		}
	}
}

func TestTamperedIdentitiesFail(t *testing.T) {
	line := loadIdentities(t)[1]
	id, _ := Parse(line)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return string(b)
	}
	// Each changes what the hash covers or what it must yield.
	for name, s := range map[string]string{
		"address":       flip(line, 9),
		"x25519 key":    flip(line, 14+5),
		"ed25519 key":   flip(line, 14+64+7),
		"address first": flip(line, 0),
	} {
		t2, err := Parse(s)
		if err != nil {
			t.Fatalf("%s: parse: %v", name, err)
		}
		if err := t2.Validate(); !errors.Is(err, ErrHashFailed) {
			t.Errorf("%s tampered: Validate = %v, want ErrHashFailed", name, err)
		}
	}
	for name, s := range map[string]string{
		"empty":          "",
		"two fields":     line[:13],
		"type 1":         line[:11] + "1" + line[12:],
		"short public":   line[:14] + line[16:],
		"long private":   line + "00",
		"five fields":    line + ":00",
		"reserved 00":    "0000000000" + line[10:],
		"reserved ff":    "ff" + line[2:],
		"non-hex":        "zz" + line[2:],
		"bad public hex": line[:14] + "zz" + line[16:],
	} {
		if _, err := Parse(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse = %v, want ErrInvalid", name, err)
		}
	}
	bin := id.AppendBinary(nil, true)
	for name, b := range map[string][]byte{
		"short":          bin[:70],
		"type":           append(append([]byte{}, bin[:5]...), append([]byte{1}, bin[6:]...)...),
		"priv length 32": append(append([]byte{}, bin[:70]...), append([]byte{32}, bin[71:]...)...),
		"truncated priv": bin[:100],
	} {
		if _, _, err := Unmarshal(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("Unmarshal %s: %v, want ErrInvalid", name, err)
		}
	}
}

// Root cafe9efeb9 of the default planet (zt1-protocol.md §10).
func TestMemoryHardHashVector(t *testing.T) {
	var pub PublicKey
	hex.Decode(pub[:], []byte("ccdef76bc7b97ded904eabc5df09886d9c1514a610036cb9139cc214001a2958978efcec15712dd3948c6e6b3a8e893df01ff493d1f8d9806a860c5420571bf0"))
	d := memoryHardHash(&pub)
	const want = "0c745ee93aa94d1252e443fe079db994c8454bbfab23890194834b99552df26ca04965e39ad5be8536f0a26b3160c8057f89ed8620e06e2e6ee1b8cafe9efeb9"
	if hex.EncodeToString(d[:]) != want {
		t.Fatalf("hash = %x\nwant %s", d, want)
	}
}

func TestVectorSignatures(t *testing.T) {
	signer, _ := Parse(loadIdentities(t)[0])
	other, _ := Parse(loadIdentities(t)[1])
	for _, m := range []string{"sign-m1", "sign-m2", "sign-m3"} {
		msg, err := os.ReadFile(filepath.Join(vectors, m+".msg"))
		if err != nil {
			t.Fatal(err)
		}
		wantHex, _ := os.ReadFile(filepath.Join(vectors, m+".sig.hex"))
		want, err := hex.DecodeString(strings.TrimSpace(string(wantHex)))
		if err != nil {
			t.Fatal(err)
		}
		sig, err := signer.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sig[:], want) {
			t.Errorf("%s: signature\n got %x\nwant %x", m, sig, want)
		}
		if !signer.Public().Verify(msg, want) {
			t.Errorf("%s: recorded signature does not verify", m)
		}
		if other.Verify(msg, want) {
			t.Errorf("%s: verifies under the wrong identity", m)
		}
		bad := append([]byte{}, want...)
		bad[3] ^= 1
		if signer.Verify(msg, bad) || signer.Verify(append(msg, 'x'), want) || signer.Verify(msg, want[:95]) {
			t.Errorf("%s: tampered signature or message verifies", m)
		}
	}
	if _, err := other.Public().Sign([]byte("x")); !errors.Is(err, ErrNoPrivate) {
		t.Errorf("public-only Sign = %v", err)
	}
}

func TestAgreeSymmetric(t *testing.T) {
	lines := loadIdentities(t)
	a, _ := Parse(lines[1])
	b, _ := Parse(lines[2])
	k1, err := a.Agree(b.Public())
	if err != nil {
		t.Fatal(err)
	}
	k2, err := b.Agree(a.Public())
	if err != nil {
		t.Fatal(err)
	}
	if k1 != k2 || k1 == (SharedKey{}) {
		t.Fatalf("keys differ: %x %x", k1, k2)
	}
	// A low-order X25519 point yields the all-zero secret; refuse it.
	var evil PublicKey
	evilID, _ := New(ztaddr.Address(0x1234567890), evil, nil)
	if _, err := a.Agree(evilID); err == nil {
		t.Error("agreement with a zero public key succeeded")
	}
}

func TestGenerate(t *testing.T) {
	id, err := Generate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := id.Validate(); err != nil {
		t.Fatal(err)
	}
	back, err := Parse(id.SecretString())
	if err != nil || back.SecretString() != id.SecretString() {
		t.Fatalf("round trip: %v", err)
	}
	sig, _ := id.Sign([]byte("m"))
	if !id.Verify([]byte("m"), sig[:]) {
		t.Fatal("own signature does not verify")
	}
	pub, err := id.PrivateKey().Public()
	if err != nil || pub != *id.PublicKey() {
		t.Fatal("public key does not derive from the private key")
	}
	if runZT1 := os.Getenv("ZT1_BIN"); runZT1 != "" {
		dir := t.TempDir()
		sec := filepath.Join(dir, "identity.secret")
		os.WriteFile(sec, []byte(id.SecretString()), 0o600)
		out, err := exec.Command(runZT1, "-i", "validate", sec).CombinedOutput()
		if err != nil {
			t.Fatalf("zerotier-idtool validate: %v: %s", err, out)
		}
		msg := filepath.Join(dir, "msg")
		os.WriteFile(msg, []byte("hello from ztnc"), 0o644)
		s, _ := id.Sign([]byte("hello from ztnc"))
		out, err = exec.Command(runZT1, "-i", "verify", sec, msg, hex.EncodeToString(s[:])).CombinedOutput()
		if err != nil {
			t.Fatalf("zerotier-idtool verify: %v: %s", err, out)
		}
	}
}

func TestGenerateCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate on cancelled context = %v", err)
	}
}
