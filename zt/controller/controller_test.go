package controller

import (
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

const testNetwork = ztaddr.NetworkID(0xd9d826a22363a18e)

// api calls the controller's HTTP API as a loopback client and decodes the JSON answer.
func api(t testing.TB, c *Controller, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:5555"
	req.Header.Set("X-ZT1-Auth", testToken)
	rec := httptest.NewRecorder()
	c.Handler(testToken).ServeHTTP(rec, req)
	var out map[string]any
	if rec.Body.Len() > 0 {
		json.Unmarshal(rec.Body.Bytes(), &out)
	}
	return rec.Code, out
}

func mustAPI(t testing.TB, c *Controller, method, path, body string) map[string]any {
	t.Helper()
	status, out := api(t, c, method, path, body)
	if status != 200 {
		t.Fatalf("%s %s: %d %v", method, path, status, out)
	}
	return out
}

const labNetwork = `{"name":"lab","v4AssignMode":{"zt":true},
	"ipAssignmentPools":[{"ipRangeStart":"10.147.17.10","ipRangeEnd":"10.147.17.200"}],
	"routes":[{"target":"10.147.17.0/24"}]}`

func isConfig(to ztaddr.Address, requestID uint64) func(sent) bool {
	return func(s sent) bool { return s.config != nil && s.to == to && s.requestID == requestID }
}

func isError(to ztaddr.Address, requestID uint64, code wire.ErrorCode) func(sent) bool {
	return func(s sent) bool {
		return s.config == nil && s.rev == nil && s.to == to && s.requestID == requestID && s.code == code
	}
}

func isRevocation(to, target ztaddr.Address) func(sent) bool {
	return func(s sent) bool { return s.rev != nil && s.to == to && s.rev.Target == target }
}

func TestRequestUnknownNetwork(t *testing.T) {
	c, rec, _ := newTestController(t, t.TempDir(), 1e12)
	ids := identities(t)
	c.Request(testNetwork, 7, ids[1].Public(), metadata1141())
	rec.wait(t, 0, isError(ids[1].Address(), 7, wire.ErrorObjectNotFound))
	// Networks of another controller are none of our business: no answer at all.
	c.Request(ztaddr.NewNetworkID(ids[2].Address(), 1), 8, ids[1].Public(), metadata1141())
	rec.quiet(t, 1, 50*time.Millisecond)
	if c.Stats().NotFound != 1 {
		t.Errorf("stats: %d not found", c.Stats().NotFound)
	}
}

// TestMembershipLifecycle: a member is denied and recorded, authorized through the API, gets a
// config with an address, receives pushed updates, and is cut off on deauthorization: online
// members get a revocation of its COMs and its next request is denied.
func TestMembershipLifecycle(t *testing.T) {
	home := t.TempDir()
	c, rec, clk := newTestController(t, home, 1e12)
	ids := identities(t)
	a, b := ids[1], ids[2]
	mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String(), labNetwork)

	c.Request(testNetwork, 1, a.Public(), metadata1141())
	_, next := rec.wait(t, 0, isError(a.Address(), 1, wire.ErrorNetworkAccessDenied))
	m := mustAPI(t, c, "GET", "/controller/network/"+testNetwork.String()+"/member/"+a.Address().String(), "")
	if m["authorized"] != false || m["identity"] != a.Public().String() || m["vMajor"] != -1.0 || m["revision"] != 1.0 {
		t.Errorf("denied member record: %v", m)
	}

	m = mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String()+"/member/"+a.Address().String(), `{"authorized":true}`)
	if m["lastAuthorizedCredentialType"] != "api" || m["lastAuthorizedTime"] != 1e12 {
		t.Errorf("authorized record: %v", m)
	}
	clk.advance(1001)
	c.Request(testNetwork, 2, a.Public(), metadata1141())
	got, next := rec.wait(t, next, isConfig(a.Address(), 2))
	nc := got.config
	if nc.Name != "lab" || nc.Type != netconf.TypePrivate || nc.IssuedTo != a.Address() || nc.Revision != 1 ||
		nc.Timestamp != 1e12+1001 || nc.MTU != 2800 || nc.MulticastLimit != 32 || !nc.BroadcastEnabled() {
		t.Errorf("config: %+v", nc)
	}
	want := netip.MustParsePrefix("10.147.17.128/24") // 10 + 0x04bca100 mod 190, as zerotier-one assigns
	if p := nc.AssignedPrefixes(); len(p) != 1 || p[0] != want {
		t.Errorf("addresses %v, want %v", p, want)
	}
	if err := nc.COM.Verify(ids[0].Public()); err != nil || nc.COM.IssuedTo() != a.Address() {
		t.Errorf("COM: %v", err)
	}
	m = mustAPI(t, c, "GET", "/controller/network/"+testNetwork.String()+"/member/"+a.Address().String(), "")
	if ips := m["ipAssignments"].([]any); len(ips) != 1 || ips[0] != "10.147.17.128" || m["vMajor"] != 1.0 || m["vMinor"] != 14.0 || m["vRev"] != 1.0 || m["vProto"] != 12.0 {
		t.Errorf("record after config: %v", m)
	}

	// B is authorized before it ever asks.
	mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String()+"/member/"+b.Address().String(), `{"authorized":true}`)
	c.Request(testNetwork, 3, b.Public(), metadata1141())
	_, next = rec.wait(t, next, isConfig(b.Address(), 3))

	// A network change reaches both online members at once.
	clk.advance(10)
	mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String(), `{"name":"renamed"}`)
	for _, id := range []*identity.Identity{a, b} {
		got, _ := rec.wait(t, next, isConfig(id.Address(), 0))
		if got.config.Name != "renamed" || got.config.Revision != 2 {
			t.Errorf("push to %s: %q r%d", id.Address(), got.config.Name, got.config.Revision)
		}
	}
	next = rec.count()

	// Deauthorize B: every online member (B included) learns that B's COMs are void.
	clk.advance(10)
	mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String()+"/member/"+b.Address().String(), `{"authorized":false}`)
	for _, to := range []ztaddr.Address{a.Address(), b.Address()} {
		got, _ := rec.wait(t, next, isRevocation(to, b.Address()))
		r := got.rev
		if r.Threshold != clk.get() || r.CredentialType != netconf.CredentialCOM || r.Flags != netconf.RevocationFastPropagate ||
			r.NetworkID != testNetwork || r.Verify(ids[0].Public()) != nil {
			t.Errorf("revocation: %+v", r)
		}
	}
	clk.advance(1001)
	c.Request(testNetwork, 4, b.Public(), metadata1141())
	rec.wait(t, next, isError(b.Address(), 4, wire.ErrorNetworkAccessDenied))

	// Deleting the network revokes everyone and then it is not found.
	next = rec.count()
	mustAPI(t, c, "DELETE", "/controller/network/"+testNetwork.String(), "")
	rec.wait(t, next, isRevocation(a.Address(), a.Address()))
	clk.advance(1001)
	c.Request(testNetwork, 5, a.Public(), metadata1141())
	rec.wait(t, next, isError(a.Address(), 5, wire.ErrorObjectNotFound))
	if _, err := os.Stat(filepath.Join(home, "controller.d", "network", testNetwork.String())); !os.IsNotExist(err) {
		t.Errorf("member directory left behind: %v", err)
	}
}

func TestRequestRateLimit(t *testing.T) {
	c, rec, clk := newTestController(t, t.TempDir(), 1e12)
	ids := identities(t)
	mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String(), `{"private":false}`)
	c.Request(testNetwork, 1, ids[1].Public(), metadata1141())
	rec.wait(t, 0, isConfig(ids[1].Address(), 1))
	clk.advance(1000)
	c.Request(testNetwork, 2, ids[1].Public(), metadata1141())
	rec.quiet(t, 1, 50*time.Millisecond)
	clk.advance(1)
	c.Request(testNetwork, 3, ids[1].Public(), metadata1141())
	rec.wait(t, 1, isConfig(ids[1].Address(), 3))
	if c.Stats().RateLimited != 1 {
		t.Errorf("rate limited %d", c.Stats().RateLimited)
	}
}

func TestAutoAuthorization(t *testing.T) {
	ids := identities(t)
	for _, tc := range []struct {
		name, network, token string
		authorized           bool
		how, credential      any
	}{
		{"public", `{"private":false}`, "", true, "public", nil},
		{"token", `{"authTokens":{"s3cret":0}}`, "s3cret", true, "token", "s3cret"},
		{"unexpired token", `{"authTokens":{"s3cret":2000000000000}}`, "s3cret", true, "token", "s3cret"},
		{"expired token", `{"authTokens":{"s3cret":5}}`, "s3cret", false, nil, nil},
		{"wrong token", `{"authTokens":{"s3cret":0}}`, "guess", false, nil, nil},
		{"private", `{}`, "", false, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rec, _ := newTestController(t, t.TempDir(), 1e12)
			mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String(), tc.network)
			c.Request(testNetwork, 1, ids[1].Public(), netconf.RequestMetadata(12, 1, 14, 1, "linux/x86_64", tc.token))
			got, _ := rec.wait(t, 0, func(s sent) bool { return s.to == ids[1].Address() })
			if (got.config != nil) != tc.authorized {
				t.Fatalf("answer %+v", got)
			}
			m := mustAPI(t, c, "GET", "/controller/network/"+testNetwork.String()+"/member/"+ids[1].Address().String(), "")
			if m["authorized"] != tc.authorized || m["lastAuthorizedCredentialType"] != tc.how || m["lastAuthorizedCredential"] != tc.credential {
				t.Errorf("record %v", m)
			}
		})
	}
}

// A record that names a different identity for the address (a collision, or a forged
// address) denies the requester and keeps the record.
func TestIdentityMismatchDenied(t *testing.T) {
	home := t.TempDir()
	ids := identities(t)
	c, rec, _ := newTestController(t, home, 1e12)
	mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String(), `{"private":false}`)
	c.Request(testNetwork, 1, ids[1].Public(), metadata1141())
	rec.wait(t, 0, isConfig(ids[1].Address(), 1))
	c.Close()

	path := filepath.Join(home, "controller.d", "network", testNetwork.String(), "member", ids[1].Address().String()+".json")
	b, _ := os.ReadFile(path)
	b = []byte(strings.Replace(string(b), ids[1].Public().String(), ids[1].Address().String()+":0:"+strings.Repeat("ab", 64), 1))
	os.WriteFile(path, b, 0o600)
	c, rec, _ = newTestController(t, home, 2e12)
	c.Request(testNetwork, 2, ids[1].Public(), metadata1141())
	rec.wait(t, 0, isError(ids[1].Address(), 2, wire.ErrorNetworkAccessDenied))
	if after, _ := os.ReadFile(path); string(after) != string(b) {
		t.Error("record changed")
	}
}

// Members whose request lacks "revr" have no rules engine and get a single ACCEPT.
func TestRulesForOldClients(t *testing.T) {
	c, rec, _ := newTestController(t, t.TempDir(), 1e12)
	ids := identities(t)
	mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String(), `{"private":false,"rules":[
		{"type":"MATCH_ETHERTYPE","etherType":2048,"not":true},{"type":"ACTION_DROP"},{"type":"ACTION_ACCEPT"}],
		"tags":[{"id":1,"default":2}]}`)
	md := &netconf.Dictionary{}
	md.AddUint("v", 7)
	c.Request(testNetwork, 1, ids[1].Public(), md)
	got, _ := rec.wait(t, 0, isConfig(ids[1].Address(), 1))
	if r := got.config.Rules; len(r) != 1 || r[0].Type != netconf.ActionAccept || len(got.config.Tags) != 0 {
		t.Errorf("old client got rules %v tags %v", r, got.config.Tags)
	}
	c.Request(testNetwork, 2, ids[2].Public(), metadata1141())
	got, _ = rec.wait(t, 0, isConfig(ids[2].Address(), 2))
	want := []netconf.Rule{{Type: netconf.MatchEtherType, Not: true, Field: []byte{8, 0}}, netconf.Action(netconf.ActionDrop), netconf.Action(netconf.ActionAccept)}
	if string(netconf.AppendRules(nil, got.config.Rules)) != string(netconf.AppendRules(nil, want)) {
		t.Errorf("rules %v", got.config.Rules)
	}
	if len(got.config.Tags) != 1 || got.config.Tags[0].ID != 1 || got.config.Tags[0].Value != 2 || got.config.Tags[0].Verify(ids[0].Public()) != nil {
		t.Errorf("tags %+v", got.config.Tags)
	}
}

// New members of a public network (authorized on their first request) get the default
// capabilities, signed for them.
func TestDefaultCapabilities(t *testing.T) {
	c, rec, _ := newTestController(t, t.TempDir(), 1e12)
	ids := identities(t)
	mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String(), `{"private":false,"capabilities":[
		{"id":5,"default":true,"rules":[{"type":"MATCH_IP_DEST_PORT_RANGE","start":22,"end":22},{"type":"ACTION_ACCEPT"}]},
		{"id":6,"rules":[{"type":"ACTION_DROP"}]}]}`)
	c.Request(testNetwork, 1, ids[1].Public(), metadata1141())
	got, _ := rec.wait(t, 0, isConfig(ids[1].Address(), 1))
	caps := got.config.Capabilities
	if len(caps) != 1 || caps[0].ID != 5 || len(caps[0].Rules) != 2 || caps[0].IssuedTo() != ids[1].Address() {
		t.Fatalf("capabilities %+v", caps)
	}
	if err := caps[0].Verify(func(a ztaddr.Address) *identity.Identity {
		if a == ids[0].Address() {
			return ids[0].Public()
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	m := mustAPI(t, c, "GET", "/controller/network/"+testNetwork.String()+"/member/"+ids[1].Address().String(), "")
	if caps := m["capabilities"].([]any); len(caps) != 1 || caps[0] != 5.0 {
		t.Errorf("record capabilities %v", m["capabilities"])
	}
}

// Each member of a small pool gets its own address, kept across restarts; when the pool is
// exhausted a member gets none.
func TestPoolAddressesUniqueAndStable(t *testing.T) {
	home := t.TempDir()
	c, rec, clk := newTestController(t, home, 1e12)
	ids := identities(t)[1:]
	mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String(), `{"private":false,"v4AssignMode":{"zt":true},
		"ipAssignmentPools":[{"ipRangeStart":"192.0.2.1","ipRangeEnd":"192.0.2.6"}],"routes":[{"target":"192.0.2.0/24"}]}`)
	// 5 usable addresses (.1-.5: the last of a pool is never picked) for 7 members.
	seen := map[netip.Prefix]ztaddr.Address{}
	first := map[ztaddr.Address][]netip.Prefix{}
	for i, id := range ids {
		c.Request(testNetwork, uint64(i+1), id.Public(), metadata1141())
		got, _ := rec.wait(t, 0, isConfig(id.Address(), uint64(i+1)))
		ps := got.config.AssignedPrefixes()
		first[id.Address()] = ps
		if i < 5 && len(ps) != 1 {
			t.Fatalf("member %d got %v", i, ps)
		}
		if i >= 5 && len(ps) != 0 {
			t.Errorf("member %d got %v from an exhausted pool", i, ps)
		}
		for _, p := range ps {
			if other, dup := seen[p]; dup {
				t.Errorf("%v given to %s and %s", p, other, id.Address())
			}
			seen[p] = id.Address()
			if p.Addr().As4()[3] > 5 || p.Bits() != 24 {
				t.Errorf("%v outside the pool", p)
			}
		}
	}
	c.Close()
	c, rec, _ = newTestController(t, home, clk.get()+5000)
	for i, id := range ids {
		c.Request(testNetwork, uint64(100+i), id.Public(), metadata1141())
		got, _ := rec.wait(t, 0, isConfig(id.Address(), uint64(100+i)))
		if a, b := got.config.AssignedPrefixes(), first[id.Address()]; len(a) != len(b) || (len(a) == 1 && a[0] != b[0]) {
			t.Errorf("after restart %s has %v, had %v", id.Address(), a, b)
		}
	}
}

// Deleting an authorized member revokes it; a deleted member that asks again starts over as
// a new, unauthorized member.
func TestDeleteMember(t *testing.T) {
	c, rec, clk := newTestController(t, t.TempDir(), 1e12)
	ids := identities(t)
	path := "/controller/network/" + testNetwork.String() + "/member/" + ids[1].Address().String()
	mustAPI(t, c, "POST", "/controller/network/"+testNetwork.String(), labNetwork)
	mustAPI(t, c, "POST", path, `{"authorized":true}`)
	c.Request(testNetwork, 1, ids[1].Public(), metadata1141())
	_, next := rec.wait(t, 0, isConfig(ids[1].Address(), 1))
	mustAPI(t, c, "DELETE", path, "")
	rec.wait(t, next, isRevocation(ids[1].Address(), ids[1].Address()))
	if status, _ := api(t, c, "GET", path, ""); status != 404 {
		t.Errorf("deleted member: %d", status)
	}
	clk.advance(1001)
	c.Request(testNetwork, 2, ids[1].Public(), metadata1141())
	rec.wait(t, next, isError(ids[1].Address(), 2, wire.ErrorNetworkAccessDenied))
}

func TestClosedControllerDrops(t *testing.T) {
	c, rec, _ := newTestController(t, t.TempDir(), 1e12)
	c.Close()
	c.Close()
	c.Request(testNetwork, 1, identities(t)[1].Public(), metadata1141())
	rec.quiet(t, 0, 20*time.Millisecond)
	if c.Stats().Dropped != 1 {
		t.Errorf("dropped %d", c.Stats().Dropped)
	}
}
