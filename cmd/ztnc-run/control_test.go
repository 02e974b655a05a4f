package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

var discard = slog.New(slog.DiscardHandler)

// longHome returns a home whose socket path does not fit a sockaddr_un.
func longHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if len(filepath.Join(home, controlSocketFile)) <= maxSocketPath {
		t.Fatal("home not long enough")
	}
	return home
}

// The home lock, the socket's mode and lifetime, leftovers of a dead process, and a home
// whose path is too long for a socket address.
func TestControlSocket(t *testing.T) {
	for _, name := range []string{"short", "long"} {
		t.Run(name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			if name == "long" {
				home = longHome(t)
			}
			os.MkdirAll(home, 0o700)
			// Leftovers of a dead instance.
			os.WriteFile(filepath.Join(home, controlSocketFile), []byte("stale"), 0o600)
			os.WriteFile(filepath.Join(home, pidFileName), []byte("999999\n"), 0o644)

			l, err := lockHome(home)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(home, pidFileName)); string(b) != strconv.Itoa(os.Getpid())+"\n" {
				t.Errorf("pid file %q", b)
			}
			_, err = lockHome(home)
			if want := fmt.Sprintf("home %s is in use by another ztnc-run (pid %d)", home, os.Getpid()); err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("second lock: %v, want %q", err, want)
			}
			in := newInstance(home)
			c, err := serveControl(discard, l, in.handler())
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(filepath.Join(home, controlSocketFile))
			if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
				t.Errorf("socket %v %v", fi.Mode(), err)
			}
			var st statusJSON
			if err := newControlClient(home).do("GET", "/status", &st); err != nil || st.Ztnc.PID != os.Getpid() {
				t.Errorf("status: %+v %v", st.Ztnc, err)
			}
			c.close()
			l.release()
			for _, f := range []string{controlSocketFile, pidFileName} {
				if _, err := os.Stat(filepath.Join(home, f)); !os.IsNotExist(err) {
					t.Errorf("%s after release: %v", f, err)
				}
			}
			var ni *errNoInstance
			if err := newControlClient(home).do("GET", "/status", nil); !errors.As(err, &ni) {
				t.Errorf("without an instance: %v", err)
			}
			if l2, err := lockHome(home); err != nil {
				t.Errorf("lock after release: %v", err)
			} else {
				l2.release()
			}
		})
	}
}

// The API of an instance without a node (as before the node started, or with --local).
func TestControlAPIWithoutNode(t *testing.T) {
	in := newInstance(t.TempDir())
	h := in.handler()
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/status", 200, `"address": ""`},
		{"GET", "/network", 200, "[]"},
		{"GET", "/peer", 200, "[]"},
		{"GET", "/network/0123456789abcdef", 404, `"error": "network 0123456789abcdef is not joined"`},
		{"POST", "/network/0123456789abcdef", 400, `without a ZeroTier node`},
		{"DELETE", "/network/0123456789abcdef", 404, `is not joined`},
		{"POST", "/network/xyz", 400, `invalid network id \"xyz\"`},
		{"POST", "/network/0000000000000000", 400, `invalid network id`},
		{"GET", "/healthz", 503, `"no network joined"`},
		{"GET", "/metrics", 200, "# TYPE ztnc_notify_handling_seconds histogram"},
		{"PUT", "/status", 405, ""},
		{"GET", "/nothing", 404, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("%s %s: %d %s, want %d with %q", c.method, c.path, rec.Code, rec.Body, c.status, c.body)
		}
	}
}

// Connections from another user are closed before any request is read.
func TestControlOwnerOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as another user")
	}
	// A directory everyone can enter, holding the home and a copy of this test binary.
	dir, err := os.MkdirTemp("", "ztnc-owner-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	home := filepath.Join(dir, "home")
	l, err := lockHome(home)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	c, err := serveControl(discard, l, newInstance(home).handler())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	// The socket's mode would stop another user; open it up to test the credential check.
	os.Chmod(home, 0o755)
	os.Chmod(filepath.Join(home, controlSocketFile), 0o666)
	exe, _ := os.Executable()
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper")
	os.WriteFile(helper, b, 0o755)
	run := func(uid uint32) string {
		cmd := exec.Command(helper, "-test.run=^TestHelperDial$")
		cmd.Env = append(os.Environ(), "ZTNC_TEST_DIAL_HOME="+home)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	out := run(65534)
	t.Logf("as nobody: %s", out)
	if !strings.Contains(out, "refused:") || strings.Contains(out, "permission denied") {
		t.Errorf("as nobody, want the connection closed by the credential check: %s", out)
	}
	if out := run(0); !strings.Contains(out, "answered") {
		t.Errorf("as root: %s", out)
	}
}

// TestHelperDial is run by TestControlOwnerOnly as another user.
func TestHelperDial(t *testing.T) {
	home := os.Getenv("ZTNC_TEST_DIAL_HOME")
	if home == "" {
		t.Skip("helper")
	}
	err := newControlClient(home).do("GET", "/status", nil)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Println("answered")
}

func FuzzParsePublish(f *testing.F) {
	for _, s := range []string{"8080:80", "127.0.0.1:8080:80/udp", "[::1]:1:2/tcp", "a:b:c:d", "[:", "1:1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePublish(s)
		if err != nil {
			return
		}
		// What parses prints as a spec that parses to the same.
		q, err := parsePublish(strings.Replace(p.String(), "->", ":", 1))
		if err != nil || q != p {
			t.Fatalf("%q → %s → %+v %v", s, p, q, err)
		}
	})
}

func FuzzParseAllowHost(f *testing.F) {
	for _, s := range []string{"192.0.2.0/24", "192.0.2.7:5432", "[2001:db8::/32]:443", "[", "::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseAllowHost(s)
		if err == nil && !r.prefix.IsValid() {
			t.Fatalf("%q: invalid prefix accepted", s)
		}
	})
}

// FuzzControlAPI sends arbitrary requests to the API of an instance without a node: every
// answer is JSON or the metrics text, never a panic.
func FuzzControlAPI(f *testing.F) {
	for _, s := range []string{"GET /status", "POST /network/0123456789abcdef", "DELETE /network/%zz", "GET /network/../status"} {
		f.Add(s)
	}
	h := newInstance("/nonexistent").handler()
	f.Fuzz(func(t *testing.T, s string) {
		method, path, _ := strings.Cut(s, " ")
		req, err := http.NewRequest(method, "http://ztnc/", nil)
		if err != nil {
			return
		}
		req.URL.Path = path
		req.RequestURI = path
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); ct == "application/json" && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%q: invalid JSON %q", s, rec.Body)
		}
	})
}
