package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Records written by zerotier-one read and re-encode byte for byte.
func TestRecordsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		file string
		rec  interface {
			UnmarshalJSON([]byte) error
			MarshalJSON() ([]byte, error)
		}
	}{
		{"testdata/zt1/lab-network.json", &network{}},
		{"testdata/zt1/lab-member-before.json", &member{}},
		{"testdata/zt1/lab-member-after.json", &member{}},
	} {
		b, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if err := tc.rec.UnmarshalJSON(b); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		out, err := tc.rec.MarshalJSON()
		if err != nil || string(out) != string(b) {
			t.Errorf("%s:\n%s\nwant\n%s (%v)", tc.file, out, b, err)
		}
	}
}

// Unknown fields survive; absent fields read as zerotier-one's defaults (private, broadcast,
// ml 32, mtu 2800, accept-all rules), not as Go zero values.
func TestRecordDefaultsAndUnknownFields(t *testing.T) {
	n := &network{}
	if err := n.UnmarshalJSON([]byte(`{"id":"d9d826a22363a18e","nwid":"d9d826a22363a18e","futureField":{"x":[1,2]},"name":"a<b"}`)); err != nil {
		t.Fatal(err)
	}
	if !n.Private || !n.EnableBroadcast || n.MulticastLimit != 32 || n.MTU != 2800 || len(n.Rules) != 1 {
		t.Errorf("defaults: %+v", n)
	}
	b, _ := n.MarshalJSON()
	for _, want := range []string{`"futureField":{"x":[1,2]}`, `"name":"a<b"`, `"dns":[]`, `"authTokens":[null]`, `"rules":[{"not":false,"or":false,"type":"ACTION_ACCEPT"}]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	m := &member{}
	if err := m.UnmarshalJSON([]byte(`{"id":"8604bca100","remoteTraceLevel":3,"extra":true}`)); err != nil {
		t.Fatal(err)
	}
	if m.VMajor != -1 || m.RemoteTraceLevel != 3 || m.IPAssignments == nil {
		t.Errorf("member defaults: %+v", m)
	}
	b, _ = m.MarshalJSON()
	if !strings.Contains(string(b), `"extra":true`) || strings.Contains(string(b), `"identity"`) || strings.Contains(string(b), `"name"`) {
		t.Errorf("member: %s", b)
	}
}

// Broken record files stop the controller with an error naming each file (and the position
// of a syntax error); nothing is loaded or overwritten. Other files are ignored.
func TestBrokenRecordFiles(t *testing.T) {
	home := t.TempDir()
	netDir := filepath.Join(home, "controller.d", "network")
	memberDir := filepath.Join(netDir, "d9d826a22363a18e", "member")
	os.MkdirAll(memberDir, 0o700)
	good := `{"id":"d9d826a22363a18e","nwid":"d9d826a22363a18e"}`
	files := map[string]string{
		filepath.Join(netDir, "d9d826a22363a18e.json"):       good,
		filepath.Join(netDir, "d9d826a223000001.json"):       "{\n  \"id\": \"d9d826a223000001\",\n  \"name\": oops\n}",
		filepath.Join(netDir, "d9d826a223000002.json"):       `{"id":"d9d826a223000002","mtu":"big"}`,
		filepath.Join(netDir, "d9d826a223000003.json"):       `{"id":"d9d826a223000009"}`,
		filepath.Join(netDir, "d9d826a223000004.json"):       `[]`,
		filepath.Join(netDir, "notes.txt"):                   "not a record",
		filepath.Join(netDir, ".d9d826a223000005.json.tmp1"): "{",
		filepath.Join(memberDir, "8604bca100.json"):          `{"id":"8604bca100",`,
		filepath.Join(memberDir, "8604bca100.json~"):         "{",
	}
	for p, s := range files {
		os.WriteFile(p, []byte(s), 0o600)
	}
	_, err := New(Config{Home: home, Identity: identities(t)[0], Sender: newRecorder()})
	if err == nil {
		t.Fatal("broken files accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"d9d826a223000001.json:3:11: invalid character 'o'",
		`d9d826a223000002.json: field "mtu": string is not a valid uint64`,
		`d9d826a223000003.json: "id" "d9d826a223000009" does not match the file name`,
		"d9d826a223000004.json: not a JSON object",
		"member/8604bca100.json",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	for _, unwanted := range []string{"notes.txt", "tmp1", "json~", "d9d826a22363a18e.json:"} {
		if strings.Contains(msg, unwanted) {
			t.Errorf("error mentions %q:\n%s", unwanted, msg)
		}
	}
	for p, s := range files {
		if b, _ := os.ReadFile(p); string(b) != s {
			t.Errorf("%s was changed", p)
		}
	}
}

// Saving writes only changed records, bumping their revision; writes leave no temporary files
// and records are private to the owner.
func TestStoreSaves(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "controller.d")
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	nwid := ztaddr.NetworkID(0xd9d826a22363a18e)
	n := newNetwork(nwid, 1)
	if changed, err := s.saveNetwork(nwid, n); !changed || err != nil || n.Revision != 1 {
		t.Fatalf("first save: %v %v r%d", changed, err, n.Revision)
	}
	same := n.clone()
	if changed, _ := s.saveNetwork(nwid, same); changed || same.Revision != 1 {
		t.Errorf("unchanged record saved: r%d", same.Revision)
	}
	next := n.clone()
	next.Name = "x"
	if changed, _ := s.saveNetwork(nwid, next); !changed || next.Revision != 2 {
		t.Errorf("changed record: r%d", next.Revision)
	}
	m := newMember(nwid, 0x8604bca100, 1)
	if changed, err := s.saveMember(nwid, 0x8604bca100, m); !changed || err != nil {
		t.Fatal(err)
	}
	if _, err := s.saveMember(0x1, 0x8604bca100, m.clone()); err == nil {
		t.Error("member of a missing network saved")
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		fi, _ := d.Info()
		switch {
		case strings.Contains(d.Name(), ".tmp"):
			t.Errorf("temporary file left: %s", p)
		case d.IsDir() && p == dir && fi.Mode().Perm() != 0o700, !d.IsDir() && fi.Mode().Perm() != 0o600:
			t.Errorf("%s has mode %v", p, fi.Mode())
		}
		return nil
	})
	s2, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n2, ok := s2.network(nwid); !ok || n2.Name != "x" || n2.Revision != 2 {
		t.Errorf("reloaded %+v", n2)
	}
	if _, ok := s2.member(nwid, 0x8604bca100); !ok {
		t.Error("member not reloaded")
	}
}
