package resolver

import (
	"bufio"
	"net/netip"
	"os"
	"strings"
)

// HostServers returns the name servers of a resolv.conf file (/etc/resolv.conf), as programs'
// resolvers read them; with none listed (or no file), the resolvers' default, the local host
// (127.0.0.1 and ::1).
func HostServers(path string) []netip.Addr {
	f, err := os.Open(path)
	if err != nil {
		return defaultServers()
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue
		}
		out = append(out, a.WithZone(""))
	}
	if len(out) == 0 {
		return defaultServers()
	}
	return out
}

func defaultServers() []netip.Addr {
	return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
}
