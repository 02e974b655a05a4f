package selfhosted

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// ztncMember is a ztnc-run member of nwid in its own lab host, with identity n and address
// addr assigned in advance (it has no process until a program runs).
func (s *selfHosted) ztncMember(t *testing.T, name, hostAddr string, n int, nwid string, addr netip.Addr) *lab.Endpoint {
	t.Helper()
	home := lab.NewHome(t)
	home.SetIdentity(t, lab.Identity(n))
	home.SetPlanet(t, s.planet)
	if err := s.ctrl.Authorize(t.Context(), nwid, home.Address(), addr); err != nil {
		t.Fatal(err)
	}
	m := &lab.WrappedMember{
		Host: s.lab.AddHost(name, hostAddr),
		Home: home,
		Addr: addr,
		Wrap: func(nwid string, argv []string) []string {
			return append([]string{ztncRun, "--home", home.Dir, "--nwid", nwid, "--"}, argv...)
		},
		Ready: []string{"true"},
	}
	return m.WaitNetwork(t, nwid, joinTimeout)
}

// TestZtncRunMembersPingAndDNS: two ztnc-run members of a network of our controller (our root;
// no zerotier-one needed). Member A runs a DNS server (dnsmasq) on the virtual network, which
// the network's config names as its DNS server for domain "lab.example"; member B pings A,
// queries A's server directly, resolves a name of the domain through ztnc-run's responder
// (which asks A's server over the network) and A's built-in name <node>.<nwid>.zt, and the
// names of both members' addresses (PTR); A pings B.
func TestZtncRunMembersPingAndDNS(t *testing.T) {
	lab.Require(t, "ping", "dig", "dnsmasq", "getent")
	if ztncRun == "" {
		t.Skip("-short")
	}
	s := startOurs(t)
	ctx := t.Context()
	aAddr, bAddr := netip.MustParseAddr("203.0.113.60"), netip.MustParseAddr("203.0.113.61")
	n := lab.NewNetwork("members", ztSubnet)
	n.V6AssignMode.RFC4193 = true
	n.DNS = &lab.DNS{Domain: "lab.example", Servers: []string{aAddr.String()}}
	nw, err := s.ctrl.CreateNetwork(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	a := s.ztncMember(t, "a", "192.0.2.20", 7, nw.ID, aAddr)
	b := s.ztncMember(t, "b", "192.0.2.21", 8, nw.ID, bAddr)
	aNode := lab.Identity(7)[:10]

	// A: the DNS server, and once B is there, three pings to it.
	aOut := t.TempDir() + "/a.out"
	a.Start(t, "sh", "-c", fmt.Sprintf(`
dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --port=53 --user=root --pid-file= \
	--address=/svc.lab.example/203.0.113.99 2>/dev/null &
i=0; until ping -c 1 -W 1 %[1]s >/dev/null; do i=$((i+1)); [ $i -lt 60 ] || exit 1; done
ping -c 3 -i 0.2 %[1]s > %[2]s 2>&1
sleep 60`, bAddr, aOut))

	script := fmt.Sprintf(`
i=0; until dig +short +time=1 +tries=1 @%[1]s svc.lab.example | grep -q .; do i=$((i+1)); [ $i -lt 60 ] || exit 1; sleep 0.5; done
ping -c 3 -i 0.2 %[1]s
echo "direct: $(dig +short @%[1]s svc.lab.example)"
echo "domain: $(dig +short svc.lab.example)"
echo "getent: $(getent ahostsv4 svc.lab.example | head -1)"
echo "builtin: $(dig +short %[2]s.%[3]s.zt)"
echo "builtin6: $(dig +short AAAA %[2]s.%[3]s.zt)"
echo "self: $(dig +short %[4]s.%[3]s.zt)"
echo "ptr: $(dig +short -x %[1]s)"
echo "ptr6: $(dig +short -x "$(dig +short AAAA %[2]s.%[3]s.zt)")"
echo "ptr self: $(dig +short -x %[6]s)"
# Stay on the network until A's pings to B are done (30 s at most).
i=0; until grep -q '3 received' %[5]s 2>/dev/null; do i=$((i+1)); [ $i -lt 150 ] || break; sleep 0.2; done`, aAddr, aNode, nw.ID, lab.Identity(8)[:10], aOut, bAddr)
	out := b.Run(t, "sh", "-c", script)
	for _, want := range []string{
		"3 packets transmitted, 3 received", "icmp_seq=3",
		"direct: 203.0.113.99", "domain: 203.0.113.99", "getent: 203.0.113.99",
		"builtin: " + aAddr.String(), "self: " + bAddr.String(),
		"ptr: " + aNode + "." + nw.ID + ".zt.\n", "ptr6: " + aNode + "." + nw.ID + ".zt.\n",
		"ptr self: " + lab.Identity(8)[:10] + "." + nw.ID + ".zt.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("member B's output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "builtin6: fd") {
		t.Errorf("no RFC 4193 address for A's built-in name:\n%s", out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(aOut)
		got := string(b)
		if strings.Contains(got, "3 packets transmitted, 3 received") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member A's pings to B:\n%s", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
