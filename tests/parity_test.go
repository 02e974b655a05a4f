package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// linuxDifferences are the transcript lines in which ztnc-run knowingly differs from Linux:
// Linux's line → ztnc-run's line and why. Each is in the README's limitations. A difference
// not listed fails TestLinuxParity, and so does a listed one that no longer occurs.
var linuxDifferences = map[string]struct{ ztnc, why string }{
	"tcp-unconnected: send EPIPE": {"tcp-unconnected: send EAGAIN",
		"before connect or listen, the program's end of a TCP socket is kept unwritable so that writes and EPOLLOUT wait for the connection"},
	`tcp-unconnected: recv 0 ""`: {"tcp-unconnected: recv EAGAIN",
		"before connect or listen, reads wait for the connection"},
	"tcp-unconnected: poll IN|OUT|HUP": {"tcp-unconnected: poll none",
		"before connect or listen, the socket reports no events"},
	"tcp-bind: listener send EPIPE": {"tcp-bind: listener send EAGAIN",
		"a listening socket's end is kept unwritable like an unconnected one's"},
	"tcp-bind: bind 0.0.0.0:11003 with SO_REUSEADDR on both EADDRINUSE": {"tcp-bind: bind 0.0.0.0:11003 with SO_REUSEADDR on both ok",
		"gVisor lets SO_REUSEADDR sockets share a port with a listener on another address; Linux refuses while one listens"},
	"tcp-refused: poll OUT|ERR|HUP": {"tcp-refused: poll OUT",
		"an AF_UNIX socket cannot raise POLLERR: a failed connect makes the socket writable, and SO_ERROR and connect give the error"},
	"tcp-more-args: SO_RCVBUF 1 clamps to 2304, SO_SNDBUF 1 to 4608": {"tcp-more-args: SO_RCVBUF 1 clamps to 4096, SO_SNDBUF 1 to 4096",
		"gVisor's smallest buffers are 4096 bytes"},
	`tcp-oob: recv MSG_OOB 1 "b"`: {"tcp-oob: recv MSG_OOB EINVAL",
		"TCP urgent data is not carried: a byte sent with MSG_OOB arrives inline"},
	`tcp-oob: recv inline 1 "a"`: {`tcp-oob: recv inline 2 "ab"`,
		"TCP urgent data is not carried: a byte sent with MSG_OOB arrives inline"},
	"tcp-oob: SO_OOBINLINE 0": {"tcp-oob: SO_OOBINLINE 1",
		"TCP urgent data is not carried: a byte sent with MSG_OOB arrives inline"},
	"tcp-broken-pipe: SO_ERROR 0": {"tcp-broken-pipe: SO_ERROR 32",
		"a write that fails with EPIPE does not take the reset's error from SO_ERROR"},
	"tcp-broken-pipe: then ERR|HUP": {"tcp-broken-pipe: then HUP",
		"the reset of a half-closed connection hangs the socket up without an error (POLLERR): reads see end of file, writes EPIPE"},
	"close-unread-after-shutdown: server poll ERR|HUP": {"close-unread-after-shutdown: server poll HUP",
		"the reset of a half-closed connection hangs the socket up without an error (POLLERR): reads see end of file, writes EPIPE"},
	"epoll: peer reset: ERR|HUP": {"epoll: peer reset: HUP",
		"the reset of a half-closed connection hangs the socket up without an error (POLLERR): reads see end of file, writes EPIPE"},
	"unreachable: poll OUT|ERR|HUP": {"unreachable: poll OUT",
		"an AF_UNIX socket cannot raise POLLERR: a failed connect makes the socket writable, and SO_ERROR and connect give the error"},
	"udp-basic: send unconnected EDESTADDRREQ": {"udp-basic: send unconnected ok",
		"write and send without an address are not trapped: on an unconnected datagram socket the datagram is dropped"},
	"tcp-more-args: SO_ZEROCOPY set ok": {"tcp-more-args: SO_ZEROCOPY set ENOTSUP",
		"SO_ZEROCOPY is refused, as on sockets without zero-copy sends: the program's end would never report completions"},
	"udp-basic: subnet broadcast without SO_BROADCAST EACCES": {"udp-basic: subnet broadcast without SO_BROADCAST EPIPE",
		"a send after shutdown(SHUT_WR) fails with EPIPE before the stack checks the broadcast permission"},
	"udp-refused: poll ERR": {"udp-refused: poll IN",
		"an ICMP error reaches a connected datagram socket as an empty datagram, which trapped receives turn into ECONNREFUSED"},
}

// TestLinuxParity runs the same socket calls (tests/testdata/parityprog) on Linux's own stack,
// in a network namespace with the --local network's addresses on an interface, and under
// ztnc-run --local, and compares what each call returned.
func TestLinuxParity(t *testing.T) {
	need(t, "unshare", "ip")
	setup := "set -e; ip link add ztnc0 type veth peer name peer0; ip link set peer0 up; ip link set ztnc0 up; ip link set lo up;" +
		"sysctl -qw net.ipv4.ping_group_range='0 2147483647';" + // ping sockets, as ztnc-run has them
		"ip addr add " + localNet + " brd + dev ztnc0; ip addr add " + localNet6 + " dev ztnc0 nodad; exec " + parityprog
	native := lab.RunCmd(t, 2*time.Minute, lab.Spec{Argv: []string{"unshare", "-n", "sh", "-c", setup}})
	if native.Code != 0 {
		t.Fatalf("on Linux: %s", native)
	}
	under := ztnc(t, 2*time.Minute, onLocal("--", parityprog)...)
	if under.Code != 0 {
		t.Fatalf("under ztnc-run: %s", under)
	}
	want, got := lines(native.Stdout), lines(under.Stdout)
	if len(want) != len(got) {
		t.Fatalf("Linux printed %d lines, ztnc-run %d\nLinux:\n%s\nztnc-run:\n%s", len(want), len(got), native.Stdout, under.Stdout)
	}
	for i, w := range want {
		known, listed := linuxDifferences[w]
		switch {
		case got[i] == w && listed:
			t.Errorf("listed difference no longer occurs (remove it from linuxDifferences): %s", w)
		case got[i] == w:
		case listed && got[i] == known.ztnc:
			t.Logf("known difference: Linux %q, ztnc-run %q: %s", w, got[i], known.why)
		default:
			t.Errorf("Linux:    %s\nztnc-run: %s", w, got[i])
		}
	}
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }
