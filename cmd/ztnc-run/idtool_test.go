package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/world"
)

const vectors = "../../zt/testdata/zt1"

// idtool runs the idtool command tree with args and returns stdout, stderr and the exit code
// main would use.
func idtool(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := newIdtoolCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	code := 0
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		code = 2 // usage error
	}
	return out.String(), errb.String(), code
}

func TestIdtoolGenerateValidateGetpublic(t *testing.T) {
	dir := t.TempDir()
	sec, pub := filepath.Join(dir, "identity.secret"), filepath.Join(dir, "identity.public")
	out, _, code := idtool(t, "generate", sec, pub)
	if code != 0 || out != sec+" written\n"+pub+" written\n" {
		t.Fatalf("generate: %d %q", code, out)
	}
	secText, _ := os.ReadFile(sec)
	pubText, _ := os.ReadFile(pub)
	id, err := identity.Parse(string(secText))
	if err != nil || !id.HasPrivate() || string(pubText) != id.String() || strings.HasSuffix(string(secText), "\n") {
		t.Fatalf("files: %q %q %v", secText, pubText, err)
	}
	if st, _ := os.Stat(sec); st.Mode().Perm() != 0o600 {
		t.Errorf("identity.secret mode %v", st.Mode())
	}
	if out, _, code := idtool(t, "validate", sec); code != 0 || out != sec+" is a valid identity\n" {
		t.Errorf("validate: %d %q", code, out)
	}
	if out, _, code := idtool(t, "validate", id.String()); code != 0 || out != id.String()+" is a valid identity\n" {
		t.Errorf("validate literal: %d %q", code, out)
	}
	if out, _, code := idtool(t, "getpublic", sec); code != 0 || out != id.String() {
		t.Errorf("getpublic: %d %q", code, out)
	}
	out, _, code = idtool(t, "generate")
	if _, err := identity.Parse(out); code != 0 || err != nil || strings.HasSuffix(out, "\n") {
		t.Errorf("generate to stdout: %d %q %v", code, out, err)
	}

	// A tampered identity fails validation; garbage is refused.
	bad := []byte(string(pubText))
	if bad[20] == '0' {
		bad[20] = '1'
	} else {
		bad[20] = '0'
	}
	badFile := filepath.Join(dir, "bad.public")
	os.WriteFile(badFile, bad, 0o644)
	if _, errOut, code := idtool(t, "validate", badFile); code != 1 || errOut != badFile+" FAILED validation.\n" {
		t.Errorf("tampered: %d %q", code, errOut)
	}
	if _, errOut, code := idtool(t, "validate", filepath.Join(dir, "missing")); code != 1 || !strings.HasPrefix(errOut, "Identity argument invalid or file unreadable: ") {
		t.Errorf("missing: %d %q", code, errOut)
	}
}

func TestIdtoolSignVerifyVectors(t *testing.T) {
	dir := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(vectors, "identities.txt"))
	line := strings.Fields(string(b))[0]
	sec := filepath.Join(dir, "id.secret")
	os.WriteFile(sec, []byte(line+"\n"), 0o600)
	pub := filepath.Join(dir, "id.public")
	os.WriteFile(pub, []byte(line[:strings.LastIndexByte(line, ':')]), 0o644)
	for _, m := range []string{"sign-m1", "sign-m2", "sign-m3"} {
		msg := filepath.Join(vectors, m+".msg")
		want, _ := os.ReadFile(filepath.Join(vectors, m+".sig.hex"))
		out, _, code := idtool(t, "sign", sec, msg)
		if code != 0 || out != strings.TrimSpace(string(want)) {
			t.Errorf("%s: sign = %d %q, want %q", m, code, out, want)
		}
		if out, _, code := idtool(t, "verify", pub, msg, out); code != 0 || out != msg+" signature valid\n" {
			t.Errorf("%s: verify hex: %d %q", m, code, out)
		}
		if _, _, code := idtool(t, "verify", pub, msg, filepath.Join(vectors, m+".sig.hex")); code != 0 {
			t.Errorf("%s: verify from file: %d", m, code)
		}
		tampered := []byte(strings.TrimSpace(string(want)))
		tampered[10] ^= 1
		if _, errOut, code := idtool(t, "verify", pub, msg, string(tampered)); code != 1 || errOut != msg+" signature check FAILED\n" {
			t.Errorf("%s: tampered signature: %d %q", m, code, errOut)
		}
	}
	if _, errOut, code := idtool(t, "sign", pub, filepath.Join(vectors, "sign-m1.msg")); code != 1 || !strings.Contains(errOut, "does not contain a private key") {
		t.Errorf("sign with public: %d %q", code, errOut)
	}
	if _, errOut, code := idtool(t, "sign", sec, filepath.Join(dir, "nope")); code != 1 || errOut != filepath.Join(dir, "nope")+" is not readable\n" {
		t.Errorf("sign missing file: %d %q", code, errOut)
	}
	if _, _, code := idtool(t, "verify", pub); code == 0 {
		t.Error("verify without arguments succeeded")
	}
}

func TestIdtoolMoon(t *testing.T) {
	dir := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(vectors, "identities.txt"))
	line := strings.Fields(string(b))[0]
	pub := filepath.Join(dir, "id.public")
	os.WriteFile(pub, []byte(line[:strings.LastIndexByte(line, ':')]), 0o644)
	out, _, code := idtool(t, "initmoon", pub)
	if code != 0 {
		t.Fatalf("initmoon: %d", code)
	}
	// Same shape as zerotier-idtool's output (testdata/zt1/initmoon-id1.json), keys aside.
	ref, _ := os.ReadFile(filepath.Join(vectors, "initmoon-id1.json"))
	var spec, refSpec moonSpec
	if err := json.Unmarshal([]byte(out), &spec); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(ref, &refSpec)
	mask := func(s string, sp moonSpec) string {
		for _, k := range []string{sp.SigningKey, sp.SigningKeySecret} {
			s = strings.ReplaceAll(s, k, "KEY")
		}
		return s
	}
	if mask(out, spec) != mask(string(ref), refSpec) {
		t.Errorf("initmoon output differs from zerotier-idtool's:\n%s\n%s", out, ref)
	}
	// genmoon with endpoints in zerotier-idtool's order.
	spec.Roots[0].StableEndpoints = []string{"192.0.2.9/9993", "10.0.0.1/9993", "192.0.2.1/80", "2001:db8::2/1"}
	js, _ := json.Marshal(spec)
	specFile := filepath.Join(dir, "moon.json")
	os.WriteFile(specFile, js, 0o644)
	wd, _ := os.Getwd()
	os.Chdir(dir)
	defer os.Chdir(wd)
	out, _, code = idtool(t, "genmoon", specFile)
	if code != 0 || !strings.HasPrefix(out, "wrote 000000d9d826a223.moon (signed world with timestamp ") {
		t.Fatalf("genmoon: %d %q", code, out)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "000000d9d826a223.moon"))
	w, _, err := world.Parse(raw)
	if err != nil || w.Type != world.TypeMoon || w.ID != 0xd9d826a223 {
		t.Fatalf("moon: %v", err)
	}
	var sk identity.PublicKey
	hex.Decode(sk[:], []byte(spec.SigningKey))
	if err := w.Verify(&sk); err != nil {
		t.Error(err)
	}
	var got []string
	for _, ep := range w.Roots[0].StableEndpoints {
		got = append(got, ep.String())
	}
	if strings.Join(got, " ") != "10.0.0.1/9993 192.0.2.9/9993 192.0.2.1/80 2001:db8::2/1" {
		t.Errorf("endpoint order %v", got)
	}
	if !inetAddressLess(netip.MustParseAddrPort("[2001:db8::2]:1"), netip.MustParseAddrPort("[::]:9993")) {
		t.Error("IPv6 port order")
	}
}

// With ZT1_BIN set, zerotier-idtool accepts what we produce and we accept what it produces.
func TestIdtoolInteropZT1(t *testing.T) {
	bin := os.Getenv("ZT1_BIN")
	if bin == "" {
		t.Skip("ZT1_BIN not set")
	}
	dir := t.TempDir()
	zt := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"-i"}, args...)...).CombinedOutput()
		return string(out), err
	}
	ours, theirs := filepath.Join(dir, "ours.secret"), filepath.Join(dir, "theirs.secret")
	idtool(t, "generate", ours)
	if out, err := zt("generate", theirs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	msg := filepath.Join(dir, "msg")
	os.WriteFile(msg, []byte("interop"), 0o644)
	for _, f := range []string{ours, theirs} {
		if out, err := zt("validate", f); err != nil {
			t.Errorf("zerotier-idtool validate %s: %v %s", f, err, out)
		}
		if _, _, code := idtool(t, "validate", f); code != 0 {
			t.Errorf("our validate %s: %d", f, code)
		}
		ourSig, _, _ := idtool(t, "sign", f, msg)
		theirSig, err := zt("sign", f, msg)
		if err != nil || ourSig != theirSig {
			t.Errorf("signatures differ for %s: %q %q %v", f, ourSig, theirSig, err)
		}
		if out, err := zt("verify", f, msg, ourSig); err != nil {
			t.Errorf("zerotier-idtool rejects our signature: %s", out)
		}
	}
	// A moon from zerotier-idtool genmoon verifies with our world code, and its roots and
	// endpoints are ordered as ours would order them.
	spec, _ := zt("initmoon", theirs)
	var s moonSpec
	json.Unmarshal([]byte(spec), &s)
	s.Roots[0].StableEndpoints = []string{"192.0.2.9/9993", "10.0.0.1/9993", "192.0.2.1/80", "2001:db8::2/1", "2001:db8::1/9993"}
	js, _ := json.Marshal(s)
	os.WriteFile(filepath.Join(dir, "m.json"), js, 0o644)
	cmd := exec.Command(bin, "-i", "genmoon", "m.json")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("genmoon: %v %s", err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.moon"))
	raw, _ := os.ReadFile(matches[0])
	w, _, err := world.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var sk identity.PublicKey
	hex.Decode(sk[:], []byte(s.SigningKey))
	if err := w.Verify(&sk); err != nil {
		t.Error(err)
	}
	mine, err := moonFromSpec(&s, w.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mine.Bytes(), raw) {
		t.Errorf("our moon differs from zerotier-idtool's:\n%x\n%x", mine.Bytes(), raw)
	}
}
