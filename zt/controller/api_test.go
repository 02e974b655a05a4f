package controller

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

const testToken = "0123456789abcdefghijklmn"

// exchange is one API call and zerotier-one's answer.
type exchange struct {
	Method      string  `json:"method"`
	Path        string  `json:"path"`
	Body        *string `json:"body"`
	Auth        string  `json:"auth"` // hdr, none, wrong, bearer, query
	Status      int     `json:"status"`
	ContentType *string `json:"contentType"`
	Response    string  `json:"response"`
}

// call performs one exchange's request against url.
func (e *exchange) call(t testing.TB, url string) (status int, contentType, body string) {
	t.Helper()
	path := e.Path
	if e.Auth == "query" {
		path += "?auth=" + testToken
	}
	var rd io.Reader
	if e.Body != nil {
		rd = strings.NewReader(*e.Body)
	}
	req, err := http.NewRequest(e.Method, url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	switch e.Auth {
	case "hdr":
		req.Header.Set("X-ZT1-Auth", testToken)
	case "wrong":
		req.Header.Set("X-ZT1-Auth", "wrong")
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

var (
	timeFields    = regexp.MustCompile(`("(?:creationTime|lastAuthorizedTime|lastDeauthorizedTime|clock)":\s*)\d+`)
	randomNetwork = regexp.MustCompile(`d9d826a223[0-9a-f]{6}`)
)

// normalize blanks what differs between runs: times and randomly chosen network IDs.
func normalize(s string) string {
	s = timeFields.ReplaceAllString(s, "${1}0")
	return randomNetwork.ReplaceAllStringFunc(s, func(id string) string {
		if id == "d9d826a22363a18e" {
			return id
		}
		return "d9d826a223RANDOM"
	})
}

// TestAPIAgainstZeroTierOne replays a session recorded against zerotier-one 1.14.1's
// controller API (testdata/zt1/api-transcript.jsonl: odd and malformed bodies, every rule
// type, auth variants, unknown paths) and expects the same status, content type and body.
func TestAPIAgainstZeroTierOne(t *testing.T) {
	f, err := os.Open("testdata/zt1/api-transcript.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, _, _ := newTestController(t, t.TempDir(), 1795757311063)
	srv := httptest.NewServer(c.Handler(testToken))
	defer srv.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for i := 0; sc.Scan(); i++ {
		var e exchange
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		status, ctype, body := e.call(t, srv.URL)
		wantType := ""
		if e.ContentType != nil {
			wantType = *e.ContentType
		}
		body, want := normalize(body), normalize(e.Response)
		if strings.HasPrefix(e.Path, "/unstable/") {
			// zerotier-one lists these in hash table order; we list them sorted.
			body, want = sortData(t, body), sortData(t, want)
		}
		if status != e.Status || ctype != wantType || body != want {
			t.Errorf("#%d %s %s (auth %s) body %v:\ngot  %d %q %s\nwant %d %q %s", i, e.Method, e.Path, e.Auth,
				deref(e.Body), status, ctype, body, e.Status, wantType, want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// sortData sorts the "data" array of an /unstable listing by its entries' encodings.
func sortData(t testing.TB, s string) string {
	var v struct {
		Data []json.RawMessage `json:"data"`
		Meta json.RawMessage   `json:"meta"`
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	slices.SortFunc(v.Data, func(a, b json.RawMessage) int { return strings.Compare(string(a), string(b)) })
	b, _ := json.Marshal(v)
	return string(b)
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// TestAPIErrors covers the answers that deliberately differ from zerotier-one's or that it
// cannot produce: bad JSON, oversized bodies, non-loopback clients.
func TestAPIErrors(t *testing.T) {
	c, _, _ := newTestController(t, t.TempDir(), 1e12)
	h := c.Handler(testToken)
	srv := httptest.NewServer(h)
	defer srv.Close()
	nw := "/controller/network/d9d826a22363a18e"
	big := `{"name":"` + strings.Repeat("x", maxBodySize) + `"}`
	for _, tc := range []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"POST", nw, `{bad`, 400, `"description":"request body is not JSON`},
		{"POST", nw, ``, 400, `"error":400`},
		{"POST", nw, `{"a":1} {"b":2}`, 400, `after the JSON value`},
		{"POST", nw, big, 413, `larger than`},
		{"POST", nw, `{"name":"ok"}`, 200, `"name":"ok"`},
		{"POST", nw + "/member/8604bca100", `{"ipAssignments":[1]}`, 400, `ipAssignments[0] is not a string`},
		{"POST", nw + "/member/8604bca100", `{"authorized":`, 400, `not JSON`},
		{"POST", "/controller", `{}`, 200, `"controller": true`},
		{"GET", nw + "/member/8604bca10", ``, 404, ``},
		{"GET", nw + "/member/8604bca1000", ``, 404, ``},
		{"GET", nw + "/member/8604bca10g", ``, 404, ``},
		{"GET", "/controller/network/d9d826a22363a18", ``, 404, ``},
		{"GET", "/controller/network/+9d826a22363a18e", ``, 404, ``},
		{"POST", "/controller/network/d9d826a22______", `{}`, 404, ``},
	} {
		e := exchange{Method: tc.method, Path: tc.path, Body: &tc.body, Auth: "hdr"}
		status, _, body := e.call(t, srv.URL)
		if status != tc.status || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s %.40q: %d %.200s, want %d containing %q", tc.method, tc.path, tc.body, status, body, tc.status, tc.contains)
		}
	}

	// Only loopback clients, whatever their token.
	req := httptest.NewRequest("GET", "/controller", nil)
	req.RemoteAddr = "192.0.2.7:4000"
	req.Header.Set("X-ZT1-Auth", testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("non-loopback client: %d", rec.Code)
	}
	// A wrong header is not rescued by a right query parameter (zerotier-one's order).
	e := exchange{Method: "GET", Path: "/controller?auth=" + testToken, Auth: "wrong"}
	if status, _, _ := e.call(t, srv.URL); status != http.StatusUnauthorized {
		t.Errorf("wrong header + right query: %d", status)
	}
}

func TestAuthToken(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	tok, err := AuthToken(home)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := regexp.MatchString(`^[a-z0-9]{24}$`, tok); !ok {
		t.Errorf("token %q", tok)
	}
	fi, err := os.Stat(filepath.Join(home, AuthTokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi.Mode(), err)
	}
	again, err := AuthToken(home)
	if err != nil || again != tok {
		t.Errorf("second read %q %v", again, err)
	}
	// A token written by hand, with a newline, is used as is.
	os.WriteFile(filepath.Join(home, AuthTokenFile), []byte("  secret\n"), 0o600)
	if tok, err := AuthToken(home); tok != "secret" || err != nil {
		t.Errorf("hand-written token %q %v", tok, err)
	}
	os.WriteFile(filepath.Join(home, AuthTokenFile), []byte("\n"), 0o600)
	if _, err := AuthToken(home); err == nil {
		t.Error("empty token accepted")
	}
}

// TestAPIConcurrent hammers one network and its members from many clients at once: every
// write must be applied exactly once (revisions count them) and the files must agree with
// the API afterwards, also after a restart.
func TestAPIConcurrent(t *testing.T) {
	home := t.TempDir()
	c, _, _ := newTestController(t, home, 1e12)
	srv := httptest.NewServer(c.Handler(testToken))
	defer srv.Close()
	nw := "/controller/network/d9d826a22363a18e"
	body := `{"name":"n0"}`
	if status, _, _ := (&exchange{Method: "POST", Path: nw, Body: &body, Auth: "hdr"}).call(t, srv.URL); status != 200 {
		t.Fatal(status)
	}
	const clients, writes = 8, 25
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range writes {
				nb := fmt.Sprintf(`{"name":"c%d-%d"}`, i, j)
				mb := fmt.Sprintf(`{"name":"w%d","authorized":%v}`, j, j%2 == 0)
				for _, e := range []exchange{
					{Method: "POST", Path: nw, Body: &nb, Auth: "hdr"},
					{Method: "POST", Path: fmt.Sprintf("%s/member/%010x", nw, 0x1000000000+i), Body: &mb, Auth: "hdr"},
					{Method: "GET", Path: nw + "/member", Auth: "hdr"},
				} {
					if status, _, body := e.call(t, srv.URL); status != 200 {
						t.Errorf("%s %s: %d %s", e.Method, e.Path, status, body)
					}
				}
			}
		}()
	}
	wg.Wait()
	get := func(url, path string, v any) {
		t.Helper()
		_, _, body := (&exchange{Method: "GET", Path: path, Auth: "hdr"}).call(t, url)
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("%s: %v in %s", path, err, body)
		}
	}
	var n struct{ Revision int }
	get(srv.URL, nw, &n)
	if n.Revision != 1+clients*writes {
		t.Errorf("network revision %d after %d writes", n.Revision, 1+clients*writes)
	}
	var revs map[string]int
	get(srv.URL, nw+"/member", &revs)
	if len(revs) != clients {
		t.Errorf("members: %v", revs)
	}
	for a, r := range revs {
		if r != writes {
			t.Errorf("member %s revision %d after %d writes", a, r, writes)
		}
	}
	c.Close()

	c2, _, _ := newTestController(t, home, 2e12)
	srv2 := httptest.NewServer(c2.Handler(testToken))
	defer srv2.Close()
	var revs2 map[string]int
	get(srv2.URL, nw+"/member", &revs2)
	if fmt.Sprint(revs2) != fmt.Sprint(revs) {
		t.Errorf("after restart %v, before %v", revs2, revs)
	}
}
