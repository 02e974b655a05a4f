package controller

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/ztnc/ztnc/zt/netconf"
)

// transcriptBodies seeds fuzzers with the bodies of the recorded zerotier-one session.
func transcriptBodies(f *testing.F) []string {
	file, err := os.Open("testdata/zt1/api-transcript.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	var bodies []string
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e exchange
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Body != nil {
			bodies = append(bodies, *e.Body)
		}
	}
	return bodies
}

func FuzzRuleJSON(f *testing.F) {
	for _, s := range []string{`{"type":"ACTION_TEE","address":"x","flags":-1}`, `{"type":"MATCH_IPV6_DEST","ip":"::ffff:1.2.3.4/300"}`,
		`{"type":"MATCH_MAC_SOURCE","mac":"a"}`, `{"type":"MATCH_CHARACTERISTICS","mask":true}`, `{"type":"MATCH_ICMP","icmpCode":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeJSON(b)
		if err != nil {
			return
		}
		r, ok := ruleFromJSON(v)
		if !ok {
			return
		}
		if len(r.Field) != r.Type.FieldLen() {
			t.Fatalf("%s: field %x for type %d", b, r.Field, r.Type)
		}
		o := ruleToJSON(r)
		if o == nil {
			t.Fatalf("%s: accepted but not renderable", b)
		}
		back, ok := ruleFromJSON(o)
		if !ok || !bytes.Equal(back.Field, canonicalField(r).Field) {
			t.Fatalf("%s: %x renders as %v, reads back as %x", b, r.Field, o, back.Field)
		}
	})
}

// FuzzNetworkBody applies any POST body to a network and a member, builds a config from the
// result, and checks that records re-encode stably and configs decode.
func FuzzNetworkBody(f *testing.F) {
	for _, b := range transcriptBodies(f) {
		f.Add([]byte(b), []byte(`{"ipAssignments":["10.147.17.5"],"tags":[[1,2]],"capabilities":[7]}`))
	}
	ids := identities(f)
	f.Fuzz(func(t *testing.T, netBody, memberBody []byte) {
		n := newNetwork(testNetwork, 1)
		if v, err := decodeJSON(netBody); err == nil {
			o, _ := v.(map[string]any)
			n.update(o, 2)
		}
		m := newMember(testNetwork, ids[1].Address(), 1)
		if v, err := decodeJSON(memberBody); err == nil {
			o, _ := v.(map[string]any)
			if m.update(o, 2) != nil {
				return
			}
		}
		for _, rec := range []interface {
			MarshalJSON() ([]byte, error)
			UnmarshalJSON([]byte) error
		}{n, m} {
			b1, err := rec.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if err := rec.UnmarshalJSON(b1); err != nil {
				t.Fatalf("%s: %v", b1, err)
			}
			if b2, _ := rec.MarshalJSON(); !bytes.Equal(b1, b2) {
				t.Fatalf("unstable encoding:\n%s\n%s", b1, b2)
			}
		}
		nc := buildConfig(&configRequest{
			nwid: testNetwork, network: n, member: m, newMember: true, identity: ids[1].Public(),
			metadata: metadata1141(), now: 3, taken: func(netip.Addr) bool { return false },
			rand: rand.New(rand.NewPCG(1, 1)),
		})
		if _, err := netconf.ParseNetworkConfig(netconf.ParseDictionary(nc.Dictionary().Bytes())); err != nil {
			t.Fatalf("config does not parse: %v", err)
		}
	})
}

// FuzzRecordFile reads any file as a network and a member record: no panic, and what reads
// re-encodes stably.
func FuzzRecordFile(f *testing.F) {
	for _, p := range []string{"testdata/zt1/lab-network.json", "testdata/zt1/lab-member-after.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"tags":[[1]],"rules":[1,null,{"type":7}],"dns":"x","authTokens":{"a":"b"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, rec := range []interface {
			MarshalJSON() ([]byte, error)
			UnmarshalJSON([]byte) error
		}{&network{}, &member{}} {
			if rec.UnmarshalJSON(b) != nil {
				continue
			}
			b1, err := rec.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if err := rec.UnmarshalJSON(b1); err != nil {
				t.Fatalf("%s: %v", b1, err)
			}
			if b2, _ := rec.MarshalJSON(); !bytes.Equal(b1, b2) {
				t.Fatalf("unstable encoding:\n%s\n%s", b1, b2)
			}
		}
	})
}

// FuzzAPI sends any method, path and body to one controller: no panic and no 5xx.
func FuzzAPI(f *testing.F) {
	for _, b := range transcriptBodies(f) {
		f.Add(uint8(1), "/controller/network/d9d826a22363a18e", b)
		f.Add(uint8(1), "/controller/network/d9d826a22363a18e/member/8604bca100", b)
	}
	f.Add(uint8(0), "/unstable/controller/network", "")
	f.Add(uint8(2), "/controller/network/d9d826a22363a18e", "")
	c, err := New(Config{Home: f.TempDir(), Identity: identities(f)[0], Sender: newRecorder()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	h := c.Handler(testToken)
	methods := []string{"GET", "POST", "DELETE", "PUT", "PATCH"}
	f.Fuzz(func(t *testing.T, method uint8, path, body string) {
		u, err := url.Parse("http://localhost" + path)
		if err != nil || u.Path != path {
			return // not a path a client could send
		}
		req, err := http.NewRequest(methods[int(method)%len(methods)], u.String(), strings.NewReader(body))
		if err != nil {
			return
		}
		req.RemoteAddr = "127.0.0.1:1"
		req.Header.Set("X-ZT1-Auth", testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", req.Method, path, body, rec.Code, rec.Body)
		}
	})
}
