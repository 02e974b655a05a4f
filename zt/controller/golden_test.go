package controller

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// TestRealControllerConfig replays requests that a zerotier-one 1.14.1 controller answered
// (testdata/zt1): same records, same identities, same clock. Signatures are deterministic, so
// each config must match byte for byte, credentials included, and the member record must be
// updated the same way.
func TestRealControllerConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		ts   int64
	}{
		// Pool IPv4, RFC 4193 + 6PLANE, DNS, rules, a default tag, a route via a gateway.
		{"lab", 0x1a21b723f74},
		// An IPv6 pool (start + member address), stored addresses in and out of the routes.
		{"v6", 0x1a21b92dc76},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			install(t, home, "testdata/zt1/"+tc.name+"-network.json", "network", "d9d826a22363a18e.json")
			install(t, home, "testdata/zt1/"+tc.name+"-member-before.json", "network", "d9d826a22363a18e", "member", "8604bca100.json")
			c, rec, _ := newTestController(t, home, tc.ts)
			ids := identities(t)
			c.Request(ztaddr.NetworkID(0xd9d826a22363a18e), 0x1234, ids[1].Public(), metadata1141())
			got, _ := rec.wait(t, 0, func(s sent) bool { return true })
			if got.config == nil || got.requestID != 0x1234 || got.to != ids[1].Address() {
				t.Fatalf("answer: %+v", got)
			}
			want, err := os.ReadFile("testdata/zt1/" + tc.name + "-member.conf")
			if err != nil {
				t.Fatal(err)
			}
			if b := got.config.Dictionary().Bytes(); !bytes.Equal(b, want) {
				wd := netconf.ParseDictionary(want)
				for _, e := range got.config.Dictionary().Entries {
					if v, _ := wd.Get(e.Key); !bytes.Equal(v, e.Value) {
						t.Errorf("%s = %x\nwant %x", e.Key, e.Value, v)
					}
				}
				t.Fatalf("config differs from zerotier-one's:\n%q\nwant\n%q", b, want)
			}
			if err := got.config.COM.Verify(ids[0].Public()); err != nil {
				t.Error(err)
			}
			wantMember, err := os.ReadFile("testdata/zt1/" + tc.name + "-member-after.json")
			if err != nil {
				t.Fatal(err)
			}
			gotMember, err := os.ReadFile(filepath.Join(home, "controller.d", "network", "d9d826a22363a18e", "member", "8604bca100.json"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotMember, wantMember) {
				t.Errorf("member record:\n%s\nwant\n%s", gotMember, wantMember)
			}
		})
	}
}

var _ zt.ConfigMaster = (*Controller)(nil)
