package tests

import (
	"os/exec"
	"strings"
	"testing"
)

// The --local network's link-local address: fe80::/64 with the EUI-64 of ztnc-run's local MAC
// (02:7a:74:6e:63:01), on interface 2.
const localLinkLocal = "fe80::7a:74ff:fe6e:6301%2"

// TestUDPSemantics runs socket-level checks (a static Go program calling the system calls
// directly): datagram boundaries, MSG_PEEK/MSG_TRUNC/MSG_DONTWAIT, FIONREAD, IP_PKTINFO and
// IPV6_RECVPKTINFO, sendmmsg/recvmmsg, dual-stack and IPV6_V6ONLY, connect/AF_UNSPEC,
// ECONNREFUSED, broadcast, multicast, link-local scope ids, a socket dup2'ed out of the
// datagram fd range, rebinding a closed socket's port, SO_RCVTIMEO, raw sockets.
func TestUDPSemantics(t *testing.T) {
	need(t)
	r := local(t, udpprog+` semantics 198.51.100.1 2001:db8:198::1 '`+localLinkLocal+`'`)
	mustContain(t, r, "ok boundaries", "ok peek-trunc-dontwait-fionread", "ok pktinfo", "ok mmsg",
		"ok dual-stack", "ok connect-disconnect-refused", "ok broadcast", "ok multicast",
		"ok link-local", "ok dup-out-of-range", "ok rebind", "ok reuseaddr", "ok timeout", "ok raw-protocols")
}

// TestDatagramSocketsUnderLowFDLimit: a program that lowers its fd limit below the datagram fd
// range still gets UDP sockets (at its lowest free numbers) and names resolve; ztnc-run warns
// that sendmsg/recvmsg on such sockets carry no addresses. socket() used to fail with EBADF.
func TestDatagramSocketsUnderLowFDLimit(t *testing.T) {
	need(t, "python3", "getent")
	r := local(t, `ulimit -n 256
python3 -c '
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); assert u.fileno() < 256, u.fileno()
u.bind(("198.51.100.1", 0)); u.sendto(b"unconnected", u.getsockname())
assert u.recvfrom(100)[0] == b"unconnected"
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.connect(u.getsockname()); c.send(b"connected")
data, src = u.recvfrom(100)
assert data == b"connected" and src == c.getsockname(), (data, src, c.getsockname())
print("ok sockets")
'
getent hosts "$(hostname).internal" && echo ok resolved`)
	mustContain(t, r, "ok sockets", "ok resolved")
	if !strings.Contains(r.Stderr, "outside the range") {
		t.Errorf("no warning about the fd outside the datagram range:\n%s", r)
	}
}

// TestMulticastGroupReq: joining a group with MCAST_JOIN_GROUP (a group_req, what
// golang.org/x/net's JoinGroup uses) receives the group's datagrams, over IPv4 and IPv6 (the
// option used to be remembered and ignored: nothing arrived); a source-specific join, which
// the stack cannot do, is refused instead of ignored.
func TestMulticastGroupReq(t *testing.T) {
	need(t, "python3")
	r := local(t, `python3 - <<'EOF'
import socket, struct, errno
A = "198.51.100.1"
def group_req(ifindex, family, addr):
    if family == socket.AF_INET:
        sa = struct.pack("=H2x4s", family, socket.inet_aton(addr))
    else:
        sa = struct.pack("=H2xI16sI", family, 0, socket.inet_pton(family, addr), 0)
    return struct.pack("=I4x", ifindex) + sa.ljust(128, b"\0")
MCAST_JOIN_GROUP, MCAST_JOIN_SOURCE_GROUP = 42, 46
for fam, lvl, grp, src in ((socket.AF_INET, socket.IPPROTO_IP, "239.1.2.3", A), (socket.AF_INET6, socket.IPPROTO_IPV6, "ff12::1234", "fd7a:746e:6300::c633:6401")):
    r = socket.socket(fam, socket.SOCK_DGRAM); r.bind(("", 12600)); r.settimeout(3)
    r.setsockopt(lvl, MCAST_JOIN_GROUP, group_req(socket.if_nametoindex("ztnc0"), fam, grp))
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex("ztnc0"))
    s.sendto(b"to the group", (grp, 12600))
    assert r.recvfrom(100)[0] == b"to the group"
    try:
        r.setsockopt(lvl, MCAST_JOIN_SOURCE_GROUP, b"\0" * 264); raise SystemExit("source-specific join taken")
    except OSError as e:
        assert e.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.EADDRNOTAVAIL), e
    r.close(); s.close()
print("OK")
EOF`)
	mustContain(t, r, "OK")
}

// TestStaticGoUDP runs a static Go UDP server and clients, connected (Dial) and unconnected
// (WriteTo/ReadFrom), over IPv4, IPv6 and loopback. The readiness probe checks the echo, not
// the exit status: while the server is not yet bound, a connected socket's native read()
// returns the port-unreachable error marker as an empty datagram (docs/architecture.md,
// "Connected UDP and ICMP errors"), which the probe would take for an answer.
func TestStaticGoUDP(t *testing.T) {
	need(t)
	r := local(t, retry+udpprog+` serve :7100 &
retry sh -c '`+udpprog+` echo 198.51.100.1:7100 up | grep -qx up'
`+udpprog+` echo 198.51.100.1:7100 v4-connected
`+udpprog+` echoto 198.51.100.1:7100 v4-unconnected
`+udpprog+` echo '[2001:db8:198::1]:7100' v6-connected
`+udpprog+` echoto '[2001:db8:198::1]:7100' v6-unconnected
`+udpprog+` echoto 127.0.0.1:7100 loopback
kill $!
`)
	mustContain(t, r, "v4-connected\n", "v4-unconnected\n", "v6-connected\n", "v6-unconnected\n", "loopback\n")
}

// TestUDPEchoSocatNetcat: socat echo servers (IPv4, IPv6), socat and netcat clients (connected
// sockets), a python client and server (unconnected sendto/recvfrom), and `nc -u -l`, which
// learns its peer with recvfrom(MSG_PEEK), connects, and reads the queued datagram natively.
func TestUDPEchoSocatNetcat(t *testing.T) {
	need(t, "socat", "nc", "python3")
	out := t.TempDir() + "/listener.out"
	r := local(t, retry+`
socat UDP4-RECVFROM:7201,fork EXEC:cat &
p1=$!
socat UDP6-RECVFROM:7202,fork EXEC:cat &
p2=$!
python3 -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 7203))
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(b"py:" + data, addr)
' &
p3=$!
retry sh -c 'echo up | socat -t 1 - UDP4:198.51.100.1:7201 | grep -q up'
retry sh -c 'echo up | socat -t 1 - UDP6:[2001:db8:198::1]:7202 | grep -q up'
retry sh -c 'echo up | nc -u -w1 198.51.100.1 7203 | grep -q up'
echo socat-v4 | socat -t 0.5 - UDP4:198.51.100.1:7201
echo nc-v4 | nc -u -w1 198.51.100.1 7201
echo socat-v6 | socat -t 0.5 - UDP6:[2001:db8:198::1]:7202
echo nc-v6 | nc -6 -u -w1 2001:db8:198::1 7202
echo nc-mapped | nc -u -w1 198.51.100.1 7203
python3 -c '
import socket
for fam, addr in ((socket.AF_INET, ("198.51.100.1", 7203)), (socket.AF_INET6, ("2001:db8:198::1", 7203))):
    c = socket.socket(fam, socket.SOCK_DGRAM)
    c.settimeout(5)
    c.sendto(b"unconnected", addr)
    data, src = c.recvfrom(100)
    assert src[:2] == addr, src
    print(data.decode(), src[0])
'
(nc -u -l -W 1 7204 > `+out+` &)
# Sent until the listener has it (it exits after one datagram).
retry sh -c 'echo to-nc-listener | nc -u -w1 198.51.100.1 7204; test -s `+out+`'
cat `+out+`
kill $p1 $p2 $p3
`)
	mustContain(t, r, "socat-v4\n", "nc-v4\n", "socat-v6\n", "nc-v6\n", "py:nc-mapped\n",
		"py:unconnected 198.51.100.1\n", "py:unconnected 2001:db8:198::1\n", "to-nc-listener\n")
}

// TestDNSVirtualNames resolves names of the virtual network with dig (UDP and TCP), host and
// getent (glibc's resolver), over the host's resolv.conf servers, which ztnc-run answers
// itself; names outside the virtual network are refused under --isolate (no host access; see
// TestFallThroughDNS for forwarding). Reverse lookups of the network's addresses give their
// names, or NXDOMAIN.
func TestDNSVirtualNames(t *testing.T) {
	need(t, "dig", "host", "getent")
	r := local(t, `
echo "dig: $(dig +short web.internal)"
echo "dig6: $(dig +short AAAA web.internal)"
echo "tcp: $(dig +tcp +short db.internal)"
echo "getent: $(getent ahostsv4 web.internal | head -1)"
echo "getent6: $(getent ahostsv6 db6.internal | head -1)"
host web.internal
dig example.com | grep -o 'status: [A-Z]*' | sed 's/^/outside: /'
dig web6.internal | grep -o 'status: [A-Z]*' | sed 's/^/unknown: /'
echo "ptr: $(dig +short -x 198.51.100.1)"
echo "ptr6: $(dig +short -x 2001:db8:198::2)"
echo "getent addr: $(getent hosts 198.51.100.2)"
dig -x 198.51.100.77 | grep -o 'status: [A-Z]*' | sed 's/^/ptr unknown: /'
`, "--isolate", "--dns-name", "web", "--add-host", "db=198.51.100.2", "--add-host", "db6=2001:db8:198::2")
	mustContain(t, r, "dig: 198.51.100.1\n", "dig6: 2001:db8:198::1\n", "tcp: 198.51.100.2\n",
		"getent: 198.51.100.1", "getent6: 2001:db8:198::2", "web.internal has address 198.51.100.1",
		"web.internal has IPv6 address 2001:db8:198::1", "outside: status: REFUSED", "unknown: status: NXDOMAIN",
		"ptr: web.internal.\n", "ptr6: db6.internal.\n", "getent addr: 198.51.100.2    db.internal", "ptr unknown: status: NXDOMAIN")
}

// TestDNSServerInside runs dnsmasq as a DNS server of the virtual network (port 53 on every
// address, IPv4 and IPv6) and queries it from other processes: the responder's redirect of the
// host's resolvers does not take port 53 from programs.
func TestDNSServerInside(t *testing.T) {
	need(t, "dnsmasq", "dig")
	r := local(t, retry+`
dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --port=53 --user=root --pid-file= \
	--address=/svc.example/198.51.100.7 --address=/svc.example/2001:db8:198::7 2>/dev/null &
retry dig +tries=1 +time=1 @198.51.100.1 svc.example >/dev/null
retry dig +tries=1 +time=1 @2001:db8:198::1 svc.example >/dev/null
retry dig +tcp +tries=1 +time=1 @127.0.0.1 svc.example >/dev/null
echo "v4: $(dig +short @198.51.100.1 svc.example)"
echo "v6: $(dig +short @2001:db8:198::1 AAAA svc.example)"
echo "tcp: $(dig +tcp +short @127.0.0.1 svc.example)"
kill $!
`)
	mustContain(t, r, "v4: 198.51.100.7\n", "v6: 2001:db8:198::7\n", "tcp: 198.51.100.7\n")
}

// TestPing runs iputils ping (ICMP datagram sockets) over IPv4 and IPv6 and checks sequence
// numbers; a python raw ICMP socket (as ping uses one with CAP_NET_RAW) gets its echo reply
// with an IPv4 header, its own identifier and sequence number.
func TestPing(t *testing.T) {
	need(t, "ping", "python3")
	r := local(t, `
ping -c 3 -i 0.2 198.51.100.1
ping -6 -c 3 -i 0.2 2001:db8:198::1
python3 -c '
import socket, struct
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(5)
hdr = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 7) + b"rawping!"
pkt = hdr[:2] + struct.pack("!H", csum(hdr)) + hdr[4:]
s.sendto(pkt, ("198.51.100.1", 0))
data, addr = s.recvfrom(1500)
ihl = (data[0] & 15) * 4
t, code, _, ident, seq = struct.unpack("!BBHHH", data[ihl:ihl+8])
print("raw reply type %d id %#x seq %d from %s ttl %d csum %s" % (t, ident, seq, addr[0], data[8], csum(data[ihl:]) == 0))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s6.settimeout(5)
s6.sendto(struct.pack("!BBHHH", 128, 0, 0, 0x4321, 9) + b"raw6", ("2001:db8:198::1", 0))
data, addr = s6.recvfrom(1500)
t, code, _, ident, seq = struct.unpack("!BBHHH", data[:8])
print("raw6 reply type %d id %#x seq %d from %s" % (t, ident, seq, addr[0]))
'
`)
	mustContain(t, r, "3 packets transmitted, 3 received", "icmp_seq=1 ", "icmp_seq=2 ", "icmp_seq=3 ",
		"64 bytes from 2001:db8:198::1: icmp_seq=3",
		"raw reply type 0 id 0x1234 seq 7 from 198.51.100.1 ttl 64 csum True",
		"raw6 reply type 129 id 0x4321 seq 9 from 2001:db8:198::1")
	if strings.Count(r.Stdout, "0% packet loss") != 2 {
		t.Fatalf("packet loss\n%s", r)
	}
}

// TestIperf3UDP runs iperf3 in UDP mode (connected sockets: the untrapped data path).
func TestIperf3UDP(t *testing.T) {
	need(t, "iperf3")
	r := local(t, retry+`
iperf3 -s -1 -B 198.51.100.1 -p 5301 >/dev/null &
retry iperf3 -u -c 198.51.100.1 -p 5301 -b 20M -t 2 -l 1200
wait
`)
	mustContain(t, r, "receiver")
}

// TestIPv6LinkLocal: TCP and UDP to the network's link-local address with its scope id, from a
// static Go client, and what the server sees. The UDP probe checks the echo (see
// TestStaticGoUDP).
func TestIPv6LinkLocal(t *testing.T) {
	need(t)
	r := local(t, retry+tcpprog+` serve '[::]:7300' &
p1=$!
`+udpprog+` serve '[::]:7301' &
p2=$!
retry `+tcpprog+` echo '[`+localLinkLocal+`]:7300' up >/dev/null
retry sh -c "`+udpprog+` echo '[`+localLinkLocal+`]:7301' up | grep -qx up"
`+tcpprog+` echo '[`+localLinkLocal+`]:7300' tcp-link-local
`+udpprog+` echo '[`+localLinkLocal+`]:7301' udp-link-local
`+udpprog+` echoto '[`+localLinkLocal+`]:7301' udp-link-local-unconnected
`+tcpprog+` names '[`+localLinkLocal+`]:7300'
kill $p1 $p2
`)
	// Go names the zone by the host's interface with that index (netlink is the host's).
	mustContain(t, r, "tcp-link-local\n", "udp-link-local\n", "udp-link-local-unconnected\n",
		"remote [fe80::7a:74ff:fe6e:6301%")
}

// TestResolvers: the resolvers programs bring resolve a virtual-network name through ztnc-run's
// responder: Go's own (static, connected UDP, native reads), busybox's (static), glibc's
// (python), c-ares (Node.js, when installed).
func TestResolvers(t *testing.T) {
	need(t, "busybox", "python3")
	script := `
` + udpprog + ` lookup web.internal
busybox nslookup web.internal | grep -A1 'Name:' | grep Address | sed 's/^/busybox: /'
python3 -c 'import socket; print("glibc:", sorted({a[4][0] for a in socket.getaddrinfo("web.internal", 80)}))'
`
	want := []string{"go: [198.51.100.1 2001:db8:198::1]", "busybox: Address: 198.51.100.1", "busybox: Address: 2001:db8:198::1",
		"glibc: ['198.51.100.1', '2001:db8:198::1']"}
	if _, err := exec.LookPath("node"); err == nil {
		script += `node -e 'require("dns").resolve4("web.internal", (e, a) => console.log("c-ares:", e, a))'
`
		want = append(want, "c-ares: null [ '198.51.100.1' ]")
	}
	r := local(t, script, "--dns-name", "web")
	mustContain(t, r, want...)
}
