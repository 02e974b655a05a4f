package lab

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreePort returns a port that was free on 127.0.0.1 for both TCP and UDP a moment ago, for a
// server the test starts next with that port on its command line. The port is taken below
// the kernel's ephemeral range where there is room: a port from that range (what binding
// port 0 gives) can be taken by any program's outgoing connection between this check and the
// server's bind, a race that other tests, running in parallel, make likely.
func FreePort(t T) int {
	t.Helper()
	lo := 20000
	hi := ephemeralLow()
	for range 200 {
		port := 0
		if hi-lo > 1000 {
			port = lo + rand.IntN(hi-lo)
		}
		if p, ok := bindBoth(port); ok {
			return p
		}
	}
	t.Fatalf("lab: no free port on 127.0.0.1")
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 if unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// bindBoth binds port (0: any) on 127.0.0.1 for UDP, then the same port for TCP, and
// releases both; it reports the port when both binds succeeded.
func bindBoth(port int) (int, bool) {
	u, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return 0, false
	}
	defer u.Close()
	port = u.LocalAddr().(*net.UDPAddr).Port
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return 0, false
	}
	l.Close()
	return port, true
}
