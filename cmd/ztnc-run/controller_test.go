package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// offlinePlanet writes a planet into home whose only root is 127.0.0.1:9, where nobody
// answers: a node in a test must never fall back on the built-in planet, whose roots are
// ZeroTier's public ones.
func offlinePlanet(t *testing.T, home string) {
	t.Helper()
	ids, err := os.ReadFile(filepath.Join(vectors, "identities.txt"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := identity.Parse(strings.Fields(string(ids))[0])
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := identity.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ep := ztaddr.InetAddressOf(netip.MustParseAddrPort("127.0.0.1:9"))
	w, err := world.New(world.TypePlanet, 1, 1, pub, []world.Root{{Identity: root.Public(), StableEndpoints: []ztaddr.InetAddress{ep}}}, &priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "planet"), w.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startController runs the controller command's body until the test ends or stop is called.
func startController(t *testing.T, home string, port int) (url string, out *lab.Buffer, stop func() error) {
	t.Helper()
	offlinePlanet(t, home)
	ctx, cancel := context.WithCancel(context.Background())
	out = &lab.Buffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	o := &controllerOptions{netOptions{home: home, bind: []string{"127.0.0.1"}, port: port, allowLoopback: true}}
	go func() {
		done <- runController(ctx, o, slog.New(slog.DiscardHandler), out, func(u string) { ready <- u })
	}()
	select {
	case url = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("controller: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		t.Fatal("controller did not start")
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Error("controller did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return url, out, stop
}

func apiCall(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("X-ZT1-Auth", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestControllerCommand: the command prints its address and API URL, serves the API with the
// token of authtoken.secret, keeps its networks across a restart and stops cleanly.
func TestControllerCommand(t *testing.T) {
	home := t.TempDir()
	port := lab.FreePort(t)
	url, out, stop := startController(t, home, port)
	tok, err := os.ReadFile(filepath.Join(home, "authtoken.secret"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(home, "identity.public"))
	if err != nil {
		t.Fatal(err)
	}
	addr := string(pub[:10])
	for _, want := range []string{"address " + addr, addr + "______", url + "/controller", filepath.Join(home, "authtoken.secret")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(url, ":"+strconv.Itoa(port)) {
		t.Errorf("API at %s, want port %d", url, port)
	}
	token := string(tok)
	if status, _ := apiCall(t, "GET", url+"/controller", "", ""); status != http.StatusUnauthorized {
		t.Errorf("without token: %d", status)
	}
	status, body := apiCall(t, "POST", url+"/controller/network/"+addr+"______", token, `{"name":"cli"}`)
	var nw struct{ ID, Name string }
	if status != 200 || json.Unmarshal([]byte(body), &nw) != nil || !strings.HasPrefix(nw.ID, addr) || nw.Name != "cli" {
		t.Fatalf("create: %d %s", status, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	url, _, _ = startController(t, home, port)
	if status, body := apiCall(t, "GET", url+"/controller/network", token, ""); status != 200 || body != `["`+nw.ID+`"]` {
		t.Errorf("after restart: %d %s", status, body)
	}
}

// A broken record stops the command with an error naming the file.
func TestControllerCommandBrokenRecord(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "controller.d", "network")
	os.MkdirAll(dir, 0o700)
	bad := filepath.Join(dir, "0123456789000001.json")
	os.WriteFile(bad, []byte("{nope"), 0o600)
	offlinePlanet(t, home)
	o := &controllerOptions{netOptions{home: home, bind: []string{"127.0.0.1"}, port: lab.FreePort(t), allowLoopback: true}}
	err := runController(context.Background(), o, slog.New(slog.DiscardHandler), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), bad+":1:2") {
		t.Errorf("error %v, want one naming %s", err, bad)
	}
}
