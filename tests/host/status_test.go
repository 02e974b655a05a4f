package host

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// statusJSON is the part of `status -j` the tests check.
type statusJSON struct {
	Address        string `json:"address"`
	PublicIdentity string `json:"publicIdentity"`
	Online         bool   `json:"online"`
	Version        string `json:"version"`
	VersionMajor   int    `json:"versionMajor"`
	PlanetWorldID  uint64 `json:"planetWorldId"`
	Config         struct {
		Settings struct {
			PrimaryPort int    `json:"primaryPort"`
			HomeDir     string `json:"homeDir"`
		} `json:"settings"`
	} `json:"config"`
	Ztnc struct {
		PID      int `json:"pid"`
		Programs []struct {
			PID  int      `json:"pid"`
			Argv []string `json:"argv"`
		} `json:"programs"`
		Supervisor struct {
			Calls       map[string]uint64 `json:"trappedCalls"`
			Sockets     int               `json:"sockets"`
			Connections uint64            `json:"connections"`
		} `json:"supervisor"`
		Node struct {
			PacketsIn uint64            `json:"packetsIn"`
			Drops     map[string]uint64 `json:"drops"`
		} `json:"node"`
	} `json:"ztnc"`
}

type networkJSON struct {
	NWID              string   `json:"nwid"`
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	MAC               string   `json:"mac"`
	Status            string   `json:"status"`
	Type              string   `json:"type"`
	MTU               int      `json:"mtu"`
	PortDeviceName    string   `json:"portDeviceName"`
	AssignedAddresses []string `json:"assignedAddresses"`
	Routes            []struct {
		Target string  `json:"target"`
		Via    *string `json:"via"`
	} `json:"routes"`
	Ztnc struct {
		Ready  bool   `json:"ready"`
		Reason string `json:"reason"`
		Frames *struct {
			PacketsIn uint64 `json:"packetsIn"`
		} `json:"frames"`
		Stack struct {
			FramesIn uint64            `json:"framesIn"`
			Drops    map[string]uint64 `json:"drops"`
		} `json:"stack"`
	} `json:"ztnc"`
}

type peerJSON struct {
	Address string `json:"address"`
	Latency int    `json:"latency"`
	Role    string `json:"role"`
	Version string `json:"version"`
	Paths   []struct {
		Address     string `json:"address"`
		LastReceive int64  `json:"lastReceive"`
		Active      bool   `json:"active"`
		Preferred   bool   `json:"preferred"`
	} `json:"paths"`
}

// cli runs a control command of ztnc-run and decodes its JSON output (with -j) into out.
func cli(t *testing.T, out any, args ...string) result {
	t.Helper()
	r := runZtnc(t, 30*time.Second, nil, args...)
	if out != nil && r.Code == 0 {
		if err := json.Unmarshal([]byte(r.Stdout), out); err != nil {
			t.Fatalf("%q: %v\n%s", args, err, r)
		}
	}
	return r
}

// TestStatusCommands: a member under `ztnc-run --nwid` on our root + controller answers
// status, listnetworks and listpeers through the control socket of its home, in
// zerotier-cli's text shapes and JSON field names, with our counters; join of its network is
// a no-op, join of another starts it (for programs attached later), leave takes the network
// from the program.
func TestStatusCommands(t *testing.T) {
	need(t, "python3", "curl")
	s := startSelfHosted(t)
	nwid := s.network(t, "status")
	home, flags := s.member(t, 2)
	addr := netip.MustParseAddr("203.0.113.50")
	if err := s.ctl.Authorize(t.Context(), nwid, home.Address(), addr); err != nil {
		t.Fatal(err)
	}
	srvDir := t.TempDir()
	os.WriteFile(srvDir+"/hello.txt", []byte("hello"), 0o644)
	script := `python3 -m http.server -d ` + srvDir + ` 8080 >/dev/null 2>&1 &
i=0; until curl -fsS -o /dev/null http://` + addr.String() + `:8080/hello.txt; do i=$((i+1)); [ $i -lt 300 ] || exit 3; sleep 0.1; done
echo fetched
while curl -fsS -m 10 -o /dev/null http://` + addr.String() + `:8080/hello.txt; do sleep 0.2; done
echo lost; sleep 600`
	// --isolate: after the leave below, the address is outside every network of the program
	// and its curl would go to the host's network.
	m := ztnc(t, "member", nil, append(flags, "--nwid", nwid, "--isolate", "--", "sh", "-c", script)...)
	waitFor(t, m, "the program's fetch", 60*time.Second, func() error {
		if !strings.Contains(m.Stdout.String(), "fetched") {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	// status
	var st statusJSON
	waitFor(t, m, "online", 30*time.Second, func() error {
		if r := cli(t, &st, "status", "-j", "--home", home.Dir); r.Code != 0 {
			return fmt.Errorf("status: %s", r)
		}
		if !st.Online {
			return fmt.Errorf("offline")
		}
		return nil
	})
	if st.Address != home.Address() || !strings.HasPrefix(st.PublicIdentity, home.Address()+":0:") || st.Version != "1.14.1" || st.VersionMajor != 1 {
		t.Errorf("status: %+v", st)
	}
	if st.Config.Settings.HomeDir != home.Dir || st.Config.Settings.PrimaryPort == 0 || st.PlanetWorldID == 0 {
		t.Errorf("status settings: %+v, planet %d", st.Config.Settings, st.PlanetWorldID)
	}
	if st.Ztnc.PID != m.Pid() || len(st.Ztnc.Programs) != 1 || st.Ztnc.Programs[0].Argv[0] != "sh" {
		t.Errorf("status ztnc: pid %d (want %d), programs %+v", st.Ztnc.PID, m.Pid(), st.Ztnc.Programs)
	}
	sup := st.Ztnc.Supervisor
	if sup.Calls["connect"] == 0 || sup.Calls["listen"] == 0 || sup.Calls["socket"] == 0 || sup.Connections < 2 || sup.Sockets == 0 {
		t.Errorf("supervisor counters: %+v", sup)
	}
	if st.Ztnc.Node.PacketsIn == 0 || st.Ztnc.Node.Drops == nil {
		t.Errorf("node counters: %+v", st.Ztnc.Node)
	}
	r := cli(t, nil, "status", "--home", home.Dir)
	if want := "200 info " + home.Address() + " 1.14.1 ONLINE\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("status text: want %q\n%s", want, r)
	}
	if r := cli(t, nil, "info", "--home", home.Dir); r.Code != 0 || !strings.HasPrefix(r.Stdout, "200 info ") {
		t.Errorf("info alias: %s", r)
	}

	// listnetworks
	var nets []networkJSON
	if r := cli(t, &nets, "listnetworks", "-j", "--home", home.Dir); r.Code != 0 || len(nets) != 1 {
		t.Fatalf("listnetworks -j: %s", r)
	}
	n := nets[0]
	if n.NWID != nwid || n.ID != nwid || n.Name != "status" || n.Status != "OK" || n.Type != "PRIVATE" || n.MTU != 2800 {
		t.Errorf("network: %+v", n)
	}
	if !slices.Contains(n.AssignedAddresses, "203.0.113.50/24") || len(n.Routes) == 0 || n.Routes[0].Target != netSubnet.String() || n.Routes[0].Via != nil {
		t.Errorf("network addresses %v routes %+v", n.AssignedAddresses, n.Routes)
	}
	if !regexp.MustCompile(`^([0-9a-f]{2}:){5}[0-9a-f]{2}$`).MatchString(n.MAC) {
		t.Errorf("mac %q", n.MAC)
	}
	if !n.Ztnc.Ready || n.Ztnc.Frames == nil || n.Ztnc.Stack.Drops == nil {
		t.Errorf("network ztnc: %+v", n.Ztnc)
	}
	r = cli(t, nil, "listnetworks", "--home", home.Dir)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	want := fmt.Sprintf("200 listnetworks %s status %s OK PRIVATE ztnc 203.0.113.50/24", nwid, n.MAC)
	if r.Code != 0 || len(lines) != 2 || lines[0] != "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>" || !strings.HasPrefix(lines[1], want) {
		t.Errorf("listnetworks: want %q\n%s", want, r)
	}

	// listpeers: the root is a PLANET with a preferred loopback path, the controller a LEAF.
	var peers []peerJSON
	if r := cli(t, &peers, "listpeers", "-j", "--home", home.Dir); r.Code != 0 {
		t.Fatalf("listpeers -j: %s", r)
	}
	roles := map[string]string{}
	for _, p := range peers {
		roles[p.Address] = p.Role
		if p.Role == "PLANET" && (len(p.Paths) == 0 || !p.Paths[0].Preferred || !strings.HasPrefix(p.Paths[0].Address, "127.0.0.1/") || p.Paths[0].LastReceive == 0) {
			t.Errorf("root's paths: %+v", p.Paths)
		}
	}
	if roles[s.ctl.Address] != "LEAF" || !slices.Contains(mapValues(roles), "PLANET") {
		t.Errorf("peers' roles: %v (controller %s)", roles, s.ctl.Address)
	}
	r = cli(t, nil, "listpeers", "--home", home.Dir)
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "200 listpeers <ztaddr> <path> <latency> <version> <role>\n") ||
		!regexp.MustCompile(`(?m)^200 listpeers [0-9a-f]{10} 127\.0\.0\.1/\d+;-?\d+;-?\d+ -?\d+ \S+ PLANET$`).MatchString(r.Stdout) {
		t.Errorf("listpeers text:\n%s", r)
	}

	// The root and the controller, ztnc-run with a node too, answer for theirs.
	var rootPeers []peerJSON
	if r := cli(t, &rootPeers, "listpeers", "-j", "--home", s.rootHome.Dir); r.Code != 0 || !slices.ContainsFunc(rootPeers, func(p peerJSON) bool { return p.Address == home.Address() && p.Role == "LEAF" }) {
		t.Errorf("the root's peers lack the member %s: %s", home.Address(), r)
	}
	if r := cli(t, nil, "status", "--home", s.ctlHome.Dir); r.Code != 0 || !strings.HasPrefix(r.Stdout, "200 info "+s.ctl.Address+" ") {
		t.Errorf("the controller's status: %s", r)
	}

	// join and leave
	if r := cli(t, nil, "join", nwid, "--home", home.Dir); r.Code != 0 || r.Stdout != "200 join OK\n" {
		t.Errorf("join of the running network: %s", r)
	}
	// Another network joins (for programs attached from now on), and leaves.
	other := s.ctl.Address + "000099"
	if r := cli(t, nil, "join", other, "--home", home.Dir); r.Code != 0 || r.Stdout != "200 join OK\n" {
		t.Errorf("join of another network: %s", r)
	}
	if r := cli(t, &nets, "listnetworks", "-j", "--home", home.Dir); r.Code != 0 || len(nets) != 2 || nets[1].NWID != other {
		t.Errorf("listnetworks after joining another: %s", r)
	}
	if r := cli(t, nil, "leave", other, "--home", home.Dir); r.Code != 0 || r.Stdout != "200 leave OK\n" {
		t.Errorf("leave of the other network: %s", r)
	}
	if r := cli(t, nil, "join", "12345", "--home", home.Dir); r.Code != 2 || !strings.Contains(r.Stderr, "invalid network id") {
		t.Errorf("join of a malformed id: %s", r)
	}
	if strings.Contains(m.Stdout.String(), "lost") {
		t.Fatalf("the program lost the network before the leave:\n%s", &m.Stdout)
	}
	if r := cli(t, nil, "leave", nwid, "--home", home.Dir); r.Code != 0 || r.Stdout != "200 leave OK\n" {
		t.Errorf("leave: %s", r)
	}
	if r := cli(t, &nets, "listnetworks", "-j", "--home", home.Dir); r.Code != 0 || len(nets) != 0 {
		t.Errorf("after leave: %s", r)
	}
	if r := cli(t, nil, "leave", nwid, "--home", home.Dir); r.Code != 1 || !strings.Contains(r.Stderr, "404 leave") {
		t.Errorf("second leave: %s", r)
	}
	// The program lost the network: its address is gone.
	waitFor(t, m, "the program losing the network", 30*time.Second, func() error {
		if !strings.Contains(m.Stdout.String(), "lost") {
			return fmt.Errorf("still reaches %s", addr)
		}
		return nil
	})
	if _, err := os.Stat(home.Path("networks.d", nwid+".conf")); !os.IsNotExist(err) {
		t.Errorf("networks.d/%s.conf after leave: %v", nwid, err)
	}

	// The control socket is the owner's only, and goes with the process.
	fi, err := os.Stat(home.Path("ztnc.sock"))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("control socket: %v %v", fi.Mode(), err)
	}
	if pid, _ := os.ReadFile(home.Path("ztnc.pid")); strings.TrimSpace(string(pid)) != fmt.Sprint(m.Pid()) {
		t.Errorf("ztnc.pid holds %q, want %d", pid, m.Pid())
	}
	m.Stop()
	if _, err := os.Stat(home.Path("ztnc.sock")); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
	if r := cli(t, nil, "status", "--home", home.Dir); r.Code != 1 || !strings.Contains(r.Stderr, "no ztnc-run is running with home "+home.Dir) {
		t.Errorf("status without an instance: %s", r)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
