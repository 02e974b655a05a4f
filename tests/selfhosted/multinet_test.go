package selfhosted

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// TestZtncRunTwoNetworks: one ztnc-run member (C) in two networks of our controller at once
// (`--nwid N1 --nwid N2`), each with another ztnc-run member serving HTTP (A on N1, B on N2).
// C reaches both servers (routing by destination across the two stacks), sees its own address
// of each network in getsockname, resolves both members' built-in names, shows one interface
// per network; C's wildcard listener is reached from both networks, while one bound to its
// N1 address is reached from N1 only.
func TestZtncRunTwoNetworks(t *testing.T) {
	lab.Require(t, "busybox", "curl", "python3", "dig")
	if ztncRun == "" {
		t.Skip("-short")
	}
	s := startOurs(t)
	ctx := t.Context()
	sub1, sub2 := netip.MustParsePrefix("203.0.113.0/25"), netip.MustParsePrefix("203.0.113.128/25")
	n1, err := s.ctrl.CreateNetwork(ctx, lab.NewNetwork("one", sub1))
	if err != nil {
		t.Fatal(err)
	}
	n2, err := s.ctrl.CreateNetwork(ctx, lab.NewNetwork("two", sub2))
	if err != nil {
		t.Fatal(err)
	}
	aAddr, bAddr := netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("203.0.113.140")
	c1, c2 := netip.MustParseAddr("203.0.113.11"), netip.MustParseAddr("203.0.113.141")

	a := s.ztncMember(t, "a", "192.0.2.30", 2, n1.ID, aAddr)
	b := s.ztncMember(t, "b", "192.0.2.31", 3, n2.ID, bAddr)

	cHome := lab.NewHome(t)
	cHome.SetIdentity(t, lab.Identity(4))
	cHome.SetPlanet(t, s.planet)
	if err := s.ctrl.Authorize(ctx, n1.ID, cHome.Address(), c1); err != nil {
		t.Fatal(err)
	}
	if err := s.ctrl.Authorize(ctx, n2.ID, cHome.Address(), c2); err != nil {
		t.Fatal(err)
	}
	cm := &lab.WrappedMember{
		Host:  s.lab.AddHost("c", "192.0.2.32"),
		Home:  cHome,
		Addr:  c1,
		Wrap:  func(string, []string) []string { return nil },
		Ready: []string{"true"},
	}
	cm.Wrap = func(_ string, argv []string) []string {
		return append([]string{ztncRun, "--home", cHome.Dir, "--nwid", n1.ID + "," + n2.ID, "--"}, argv...)
	}
	c := cm.WaitNetwork(t, n1.ID, joinTimeout)

	// A and B: a web server, and (one ztnc-run per home at a time) a client of C's servers,
	// whose results go to a file.
	results := t.TempDir()
	for _, m := range []struct {
		ep       *lab.Endpoint
		addr, cc netip.Addr
		name     string
	}{{a, aAddr, c1, "server-a"}, {b, bAddr, c2, "server-b"}} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "who.txt"), []byte(m.name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(results, m.name)
		m.ep.Start(t, "env", "UDP_ECHO="+udpEcho, "UDP_ASK="+udpAsk, "sh", "-c", fmt.Sprintf(`
busybox httpd -f -p %[1]s -h %[2]s &
python3 -c "$UDP_ECHO" %[5]s 9999 %[6]s &
i=0; until curl -sf --max-time 2 -o %[3]s.any http://%[4]s:9000/who.txt; do i=$((i+1)); [ $i -lt 120 ] || break; sleep 0.5; done
curl -sf --max-time 3 -o %[3]s.bound http://%[4]s:9001/who.txt || echo unreachable > %[3]s.bound
python3 -c "$UDP_ASK" %[4]s 9998 > %[3]s.udp 2>&1
touch %[3]s.done
sleep 600`, lab.HostPort(m.addr, 8080), dir, out, m.cc, m.addr, m.name))
	}
	cDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cDir, "who.txt"), []byte("server-c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	aNode, bNode := lab.Identity(2)[:10], lab.Identity(3)[:10]
	// C: a wildcard server and one bound to its N1 address, then its clients; it stays up
	// until A and B have tried it.
	done := filepath.Join(t.TempDir(), "done")
	cScript := fmt.Sprintf(`
busybox httpd -f -p 9000 -h %[1]s &
busybox httpd -f -p %[2]s:9001 -h %[1]s &
i=0; until curl -sf --max-time 2 -o - http://%[3]s:8080/who.txt >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 60 ] || exit 1; sleep 0.5; done
i=0; until curl -sf --max-time 2 -o - http://%[4]s:8080/who.txt >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 60 ] || exit 1; sleep 0.5; done
echo "n1: $(curl -sS --max-time 5 http://%[3]s:8080/who.txt)"
echo "n2: $(curl -sS --max-time 5 http://%[4]s:8080/who.txt)"
python3 - <<'EOF'
import socket
for peer in ("%[3]s", "%[4]s"):
    s = socket.create_connection((peer, 8080), timeout=5)
    print("local to %%s: %%s" %% (peer, s.getsockname()[0]))
# UDP: one unconnected socket to both networks, then a connected one to each.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
for peer in ("%[3]s", "%[4]s"):
    u.sendto(b"unconnected", (peer, 9999))
    d, src = u.recvfrom(100)
    print("udp from %%s: %%s" %% (src[0], d.decode()))
for peer in ("%[3]s", "%[4]s"):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(5)
    c.connect((peer, 9999)); c.send(b"connected")
    print("connected udp to %%s: %%s, local %%s" %% (peer, c.recv(100).decode(), c.getsockname()[0]))
EOF
python3 -c "$UDP_ECHO" 0.0.0.0 9998 server-c &
echo "name a: $(dig +short %[5]s.%[6]s.zt)"
echo "name b: $(dig +short %[7]s.%[8]s.zt)"
echo "interfaces: $(ip -o -4 addr show | awk '{print $2, $4}' | tr '\n' ' ')"
i=0; until [ -e %[9]s ]; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done
`, cDir, c1, aAddr, bAddr, aNode, n1.ID, bNode, n2.ID, done)
	out := make(chan string, 1)
	go func() {
		o, err := c.Exec(t, "env", "UDP_ECHO="+udpEcho, "sh", "-c", cScript)
		if err != nil {
			o += "\nerror: " + err.Error()
		}
		out <- o
	}()
	read := func(name string) string {
		deadline := time.Now().Add(90 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(results, name+".done")); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		return ""
	}
	read("server-a")
	read("server-b")
	file := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(results, name))
		return strings.TrimSpace(string(b))
	}
	fromA, fromB := file("server-a.any"), file("server-b.any")
	aBound, bBound := file("server-a.bound"), file("server-b.bound")
	aUDP, bUDP := file("server-a.udp"), file("server-b.udp")
	os.WriteFile(done, nil, 0o644)
	got := <-out
	for _, want := range []string{
		"n1: server-a\n", "n2: server-b\n",
		fmt.Sprintf("local to %s: %s\n", aAddr, c1), fmt.Sprintf("local to %s: %s\n", bAddr, c2),
		"name a: " + aAddr.String() + "\n", "name b: " + bAddr.String() + "\n",
		fmt.Sprintf("%s/25", c1), fmt.Sprintf("%s/25", c2),
		fmt.Sprintf("udp from %s: server-a:unconnected\n", aAddr), fmt.Sprintf("udp from %s: server-b:unconnected\n", bAddr),
		fmt.Sprintf("connected udp to %s: server-a:connected, local %s\n", aAddr, c1),
		fmt.Sprintf("connected udp to %s: server-b:connected, local %s\n", bAddr, c2),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("member C's output lacks %q:\n%s", want, got)
		}
	}
	if fromA != "server-c" || fromB != "server-c" {
		t.Errorf("C's wildcard listener from N1: %q, from N2: %q; want server-c from both", fromA, fromB)
	}
	// C's wildcard UDP server answers both networks, from the address each one reached.
	if aUDP != fmt.Sprintf("server-c:ask from %s", c1) || bUDP != fmt.Sprintf("server-c:ask from %s", c2) {
		t.Errorf("C's wildcard UDP server from N1: %q, from N2: %q", aUDP, bUDP)
	}
	if aBound != "server-c" {
		t.Errorf("C's listener bound to its N1 address, from N1: %q", aBound)
	}
	if !strings.Contains(bBound, "unreachable") {
		t.Errorf("C's listener bound to its N1 address answered on N2: %q", bBound)
	}
}

// TestZtncRunInterfaceNameAsZT1: the interface a program under ztnc-run sees for a network has
// the name zerotier-one gives its TAP device for that network (needs ZT1_BIN).
func TestZtncRunInterfaceNameAsZT1(t *testing.T) {
	s := startSelfHosted(t)
	ctx := t.Context()
	nw, err := s.ctrl.CreateNetwork(ctx, lab.NewNetwork("names", ztSubnet))
	if err != nil {
		t.Fatal(err)
	}
	home := s.memberHome(t, 2, nw.ID)
	if err := s.ctrl.Authorize(ctx, nw.ID, home.Address()); err != nil {
		t.Fatal(err)
	}
	m := lab.StartZT1(t, s.lab.AddHost("m1", member1Addr), lab.ZT1Config{Home: home})
	n, err := m.WaitNetworkOK(nw.ID, joinTimeout)
	if err != nil {
		t.Fatal(err)
	}
	z := s.ztncMember(t, "z", "192.0.2.40", 3, nw.ID, netip.MustParseAddr("203.0.113.70"))
	out := z.Run(t, "ip", "-o", "link")
	if n.PortDeviceName == "" || !strings.Contains(out, ": "+n.PortDeviceName+": ") {
		t.Errorf("zerotier-one's device is %q; ztnc-run shows:\n%s", n.PortDeviceName, out)
	}
}

// udpEcho answers each datagram with its prefix (argv 3) and the datagram, on argv 1:2.
const udpEcho = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(4096)
    s.sendto(sys.argv[3].encode() + b":" + d, a)
`

// udpAsk sends "ask" to argv 1:2 until it gets an answer, and prints it with its source.
const udpAsk = `
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(1)
for _ in range(60):
    u.sendto(b"ask", (sys.argv[1], int(sys.argv[2])))
    try:
        d, src = u.recvfrom(100)
        print("%s from %s" % (d.decode(), src[0])); break
    except socket.timeout:
        pass
`
