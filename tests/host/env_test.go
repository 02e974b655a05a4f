package host

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// bindCheck is a program that succeeds only if the address is its own on the virtual network.
func bindCheck(addr string) []string {
	family := "AF_INET"
	if strings.Contains(addr, ":") {
		family = "AF_INET6"
	}
	return []string{"python3", "-c", `import socket
s = socket.socket(socket.` + family + `)
s.bind(("` + addr + `", 0))
print("bound", s.getsockname()[0])`}
}

// Every flag has its variable; a flag on the command line wins over it, and a network chosen
// on the command line (--local) replaces the one from the environment (ZTNC_NWID).
func TestEnvLocalAndPrecedence(t *testing.T) {
	need(t, "python3")
	for _, c := range []struct {
		name string
		env  []string
		args []string
		addr string
	}{
		{"ZTNC_LOCAL", []string{"ZTNC_LOCAL=198.51.100.1/24"}, nil, "198.51.100.1"},
		{"ZTNC_LOCAL list", []string{"ZTNC_LOCAL=198.51.100.1/24, 2001:db8:9::1/64"}, nil, "2001:db8:9::1"},
		{"flag wins", []string{"ZTNC_LOCAL=203.0.113.1/24"}, []string{"--local", "198.51.100.1/24"}, "198.51.100.1"},
		// Should --local not replace the network, the run fails at once on the planet (it must
		// never reach for ZeroTier's public roots).
		{"--local replaces ZTNC_NWID", []string{"ZTNC_NWID=8056c2e21c000001", "ZT_NC_NWID=8056c2e21c000001", "ZTNC_PLANET=/nonexistent/planet"}, []string{"--local", "198.51.100.1/24"}, "198.51.100.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runZtnc(t, time.Minute, c.env, append(c.args, append([]string{"--"}, bindCheck(c.addr)...)...)...)
			if r.Code != 0 || r.Stdout != "bound "+c.addr+"\n" {
				t.Errorf("%s", r)
			}
		})
	}
	// The variable that lost to the flag is not a network of this run.
	r := runZtnc(t, time.Minute, []string{"ZTNC_LOCAL=203.0.113.1/24"}, append([]string{"--local", "198.51.100.1/24", "--"}, bindCheck("203.0.113.1")...)...)
	if r.Code == 0 {
		t.Errorf("203.0.113.1 from the overridden ZTNC_LOCAL is usable: %s", r)
	}
}

// Malformed variables stop ztnc-run with one line naming the variable; flags that make no
// sense alone are refused, not ignored.
func TestEnvErrors(t *testing.T) {
	need(t)
	for _, c := range []struct {
		env  string
		want string
	}{
		{"ZTNC_PORT=abc", `ztnc-run: ZTNC_PORT="abc": --port: `},
		{"ZTNC_VERBOSE=maybe", `ztnc-run: ZTNC_VERBOSE="maybe": want 1/0, true/false, yes/no or on/off`},
		{"ZTNC_WAIT=soon", `ztnc-run: ZTNC_WAIT="soon": --wait: `},
		{"ZTNC_PUBLISH=80", `ztnc-run: --publish "80": `},
		{"ZTNC_LOG_FORMAT=xml", `ztnc-run: --log-format "xml": want text or json`},
		{"ZTNC_ISOLATE=maybe", `ztnc-run: ZTNC_ISOLATE="maybe": want 1/0, true/false, yes/no or on/off`},
		{"ZTNC_ALLOW_HOST=192.0.2.0/33", `ztnc-run: --allow-host "192.0.2.0/33": want CIDR[:PORT]`},
		{"ZTNC_ALLOW_HOST=192.0.2.0/24", `ztnc-run: --allow-host makes holes in --isolate: give --isolate too`},
		{"ZTNC_HEALTH=nowhere", `ztnc-run: --health "nowhere": want ADDRESS:PORT`},
	} {
		t.Run(c.env, func(t *testing.T) {
			r := runZtnc(t, 30*time.Second, []string{c.env}, "--local", "198.51.100.1/24", "--", "true")
			if r.Code != 125 || !strings.HasPrefix(r.Stderr, c.want) || strings.Count(r.Stderr, "\n") != 1 {
				t.Errorf("want exit 125 and one line starting %q\n%s", c.want, r)
			}
		})
	}
	r := runZtnc(t, 30*time.Second, []string{"ZT_NC_NWID=xyz"}, "--", "true")
	if want := `ztnc-run: --nwid "xyz": want a network ID of 16 hex digits` + "\n"; r.Code != 125 || r.Stderr != want {
		t.Errorf("want exit 125 and %q\n%s", want, r)
	}
}

// ZTNC_LOG_FORMAT and ZTNC_VERBOSE: every line on stderr is JSON, with debug lines.
func TestEnvLogging(t *testing.T) {
	need(t, "python3")
	port := lab.FreePort(t)
	r := runZtnc(t, time.Minute, []string{"ZTNC_LOG_FORMAT=json", "ZTNC_VERBOSE=yes", "ZTNC_LOCAL=198.51.100.1/24",
		"ZTNC_PUBLISH=127.0.0.1:" + strconv.Itoa(port) + ":8080"}, append([]string{"--"}, bindCheck("198.51.100.1")...)...)
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	levels := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Msg == "" {
			t.Errorf("not a JSON log record: %q", line)
		}
		levels[rec.Level]++
	}
	if levels["DEBUG"] == 0 || levels["INFO"] == 0 {
		t.Errorf("levels %v, want DEBUG (ZTNC_VERBOSE) and INFO (the published port)\n%s", levels, r)
	}
	// A failure before anything ran is a JSON record too.
	r = runZtnc(t, 30*time.Second, []string{"ZTNC_LOG_FORMAT=json"}, "--local", "198.51.100.1/24", "--", "/nonexistent/program")
	var rec struct{ Level, Msg string }
	if r.Code != 127 || json.Unmarshal([]byte(r.Stderr), &rec) != nil || rec.Level != "ERROR" || !strings.Contains(rec.Msg, "/nonexistent/program") {
		t.Errorf("error with --log-format json: want one JSON record\n%s", r)
	}
}

// A member configured by the environment alone (as a container's entrypoint is): ZTNC_NWID or
// the beta's ZT_NC_NWID, ZTNC_HOME, ZTNC_PLANET, ZTNC_PORT, ZTNC_BIND, ZTNC_WAIT,
// ZTNC_HEALTH. The program, which inherits ZTNC_HOME, asks its own ztnc-run for its networks.
func TestEnvMember(t *testing.T) {
	need(t, "python3")
	s := startSelfHosted(t)
	nwid := s.network(t, "env")
	for i, nwVar := range []string{"ZTNC_NWID", "ZT_NC_NWID"} {
		t.Run(nwVar, func(t *testing.T) {
			home := homeWith(t, 2+i) // no planet file: ZTNC_PLANET names it
			addr := fmt.Sprintf("203.0.113.%d", 80+i)
			if err := s.ctl.Authorize(t.Context(), nwid, home.Address(), netip.MustParseAddr(addr)); err != nil {
				t.Fatal(err)
			}
			port, hport := lab.FreePort(t), lab.FreePort(t)
			env := []string{nwVar + "=" + nwid, "ZTNC_HOME=" + home.Dir, "ZTNC_PLANET=" + s.planet,
				"ZTNC_PORT=" + strconv.Itoa(port), "ZTNC_BIND=127.0.0.1", "ZTNC_WAIT=45",
				"ZTNC_HEALTH=127.0.0.1:" + strconv.Itoa(hport)}
			env = append(env, "BIND_CHECK="+bindCheck(addr)[2])
			p := lab.StartChild(t, "member", lab.Spec{Argv: []string{ztncRun, "--", "sh", "-c",
				`python3 -c "$BIND_CHECK" && ztnc-run listnetworks && ztnc-run status -j && echo END && sleep 600`}, Env: env})
			waitFor(t, p, "the program's output", time.Minute, func() error {
				if !strings.Contains(p.Stdout.String(), "END") {
					return fmt.Errorf("not yet")
				}
				return nil
			})
			code, h, err := getHealth("http://127.0.0.1:" + strconv.Itoa(hport))
			if err != nil || code != 200 || !h.OK {
				t.Errorf("/healthz from ZTNC_HEALTH: %d %+v %v", code, h, err)
			}
			r := result{Stdout: p.Stdout.String()}
			want := fmt.Sprintf("bound %s\n200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>\n200 listnetworks %s env ", addr, nwid)
			if !strings.HasPrefix(r.Stdout, want) || !strings.Contains(r.Stdout, " OK PRIVATE ztnc "+addr+"/24\n") {
				t.Errorf("want output starting %q\n%s", want, r)
			}
			var st statusJSON
			if err := json.NewDecoder(strings.NewReader(r.Stdout[strings.Index(r.Stdout, "{"):])).Decode(&st); err != nil {
				t.Fatalf("status -j: %v\n%s", err, r)
			}
			if st.Address != home.Address() || st.Config.Settings.PrimaryPort != port {
				t.Errorf("status: address %s port %d, want %s %d", st.Address, st.Config.Settings.PrimaryPort, home.Address(), port)
			}
		})
	}
}

// ZTNC_WAIT bounds the wait for the network: exit 125 with one line naming what to do.
func TestEnvWaitTimeout(t *testing.T) {
	need(t)
	s := startSelfHosted(t)
	nwid := s.network(t, "wait")
	home, flags := s.member(t, 5) // never authorized
	start := time.Now()
	r := runZtnc(t, time.Minute, []string{"ZTNC_NWID=" + nwid, "ZTNC_WAIT=5"}, append(flags, "--", "true")...)
	want := "ztnc-run: ACCESS_DENIED: authorize " + home.Address() + " on network " + nwid + "\n"
	if r.Code != 125 || !strings.HasSuffix(r.Stderr, want) {
		t.Errorf("want exit 125 and last line %q\n%s", want, r)
	}
	if d := time.Since(start); d < 5*time.Second || d > 25*time.Second {
		t.Errorf("gave up after %v, want about 5 s", d)
	}
}

// ZTNC_IDENTITY_SECRET gives the node its identity, as a value or file:PATH: written to an
// empty home, accepted when the home has the same, refused when it has another or when it is
// not a valid secret identity; the program never sees the variable.
func TestIdentitySecret(t *testing.T) {
	need(t)
	s := startSelfHosted(t)
	nwid := s.network(t, "identity")
	secret := lab.Identity(4)
	addr := strings.SplitN(secret, ":", 2)[0]
	secretFile := filepath.Join(t.TempDir(), "id.secret")
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)
	program := []string{"--", "sh", "-c", `env | grep -c ZTNC_IDENTITY_SECRET; ztnc-run status`}

	member := func(t *testing.T) (*lab.Home, []string) {
		h := lab.NewHome(t)
		b, _ := os.ReadFile(s.planet)
		h.SetPlanet(t, b)
		return h, []string{"--home", h.Dir, "--bind", "127.0.0.1", "--port", strconv.Itoa(lab.FreePort(t)), "--nwid", nwid, "--wait", "0"}
	}
	for _, c := range []struct{ name, val string }{{"value", secret}, {"file", "file:" + secretFile}} {
		t.Run(c.name, func(t *testing.T) {
			home, flags := member(t)
			for run := range 2 { // the second run finds the same identity in the home
				r := runZtnc(t, time.Minute, []string{"ZTNC_IDENTITY_SECRET=" + c.val}, append(flags, program...)...)
				if r.Code != 0 || !strings.HasPrefix(r.Stdout, "0\n200 info "+addr+" ") {
					t.Fatalf("run %d: want the program to see no secret and address %s\n%s", run, addr, r)
				}
			}
			b, err := os.ReadFile(home.Path("identity.secret"))
			fi, _ := os.Stat(home.Path("identity.secret"))
			if err != nil || strings.TrimSpace(string(b)) != secret || fi.Mode().Perm() != 0o600 {
				t.Errorf("identity.secret: %q %v %v", b, fi.Mode(), err)
			}
			if home.Address() != addr {
				t.Errorf("identity.public names %q", home.Address())
			}
		})
	}
	t.Run("other identity in the home", func(t *testing.T) {
		home, flags := member(t)
		home.SetIdentity(t, lab.Identity(5))
		r := runZtnc(t, time.Minute, []string{"ZTNC_IDENTITY_SECRET=" + secret}, append(flags, program...)...)
		want := fmt.Sprintf("ztnc-run: ZTNC_IDENTITY_SECRET is identity %s, but %s holds %s: ", addr, home.Dir, home.Address())
		if r.Code != 125 || !strings.HasPrefix(r.Stderr, want) {
			t.Errorf("want exit 125 and %q\n%s", want, r)
		}
	})
	for _, c := range []struct{ name, val, want string }{
		{"malformed", "0123456789:0:abcd", "ztnc-run: ZTNC_IDENTITY_SECRET: invalid identity"},
		{"public only", strings.Join(strings.Split(secret, ":")[:3], ":"), "ztnc-run: ZTNC_IDENTITY_SECRET: it is a public identity"},
		{"keys of another", strings.Join(append(strings.Split(secret, ":")[:3], strings.Split(lab.Identity(5), ":")[3]), ":"), "ztnc-run: ZTNC_IDENTITY_SECRET: its private key does not match its public key"},
		{"missing file", "file:/nonexistent/id.secret", "ztnc-run: ZTNC_IDENTITY_SECRET: open /nonexistent/id.secret: no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			home, flags := member(t)
			r := runZtnc(t, time.Minute, []string{"ZTNC_IDENTITY_SECRET=" + c.val}, append(flags, program...)...)
			if r.Code != 125 || !strings.HasPrefix(r.Stderr, c.want) || strings.Count(r.Stderr, "\n") != 1 {
				t.Errorf("want exit 125 and one line starting %q\n%s", c.want, r)
			}
			if _, err := os.Stat(home.Path("identity.secret")); !os.IsNotExist(err) {
				t.Errorf("identity.secret written: %v", err)
			}
		})
	}
}
