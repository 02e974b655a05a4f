package compat

import (
	"fmt"
	"regexp"
)

func dnsEntry() *Entry {
	return &Entry{
		Name:     "dns",
		Program:  "dnsmasq + dig",
		Checks:   "dnsmasq with its own records answers dig over UDP (a host record and a wildcard) and over TCP",
		Needs:    []string{"dnsmasq", "dig"},
		Versions: []Version{versionOf("dnsmasq", `Dnsmasq version (\S+)`, "dnsmasq", "--version"), versionOf("", `DiG \S+`, "dig", "-v")},
		Features: []Feature{UDP},
		Run: func(c *Case) {
			port := c.Port()
			srv := c.Server.Start("dnsmasq", "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--log-queries",
				"--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
				"--listen-address="+c.Server.Addr.String(), fmt.Sprintf("--port=%d", port),
				"--user="+c.User.Name, "--group="+c.User.Name, "--pid-file="+c.Path("dnsmasq.pid"),
				"--host-record=web.compat.test,203.0.113.80", "--address=/wild.compat.test/192.0.2.77")
			srv.WaitTCP(port)
			dig := func(args ...string) string {
				return c.Client.Run(append([]string{"dig", "@" + c.Server.Addr.String(), "-p", fmt.Sprint(port),
					"+short", "+time=5", "+tries=2"}, args...)...)
			}
			c.Equal("dig web.compat.test (UDP)", dig("web.compat.test", "A"), "203.0.113.80")
			c.Equal("dig any.wild.compat.test (UDP)", dig("any.wild.compat.test", "A"), "192.0.2.77")
			c.Equal("dig +tcp web.compat.test", dig("+tcp", "web.compat.test", "A"), "203.0.113.80")
		},
	}
}

var pingRe = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func pingEntry() *Entry {
	return &Entry{
		Name:     "ping",
		Program:  "ping (iputils)",
		Checks:   "ping -c 3 from the client to the server and from the server to the client: every echo answered",
		Needs:    []string{"ping"},
		Versions: []Version{versionOf("iputils", `iputils[- ](\S+)`, "ping", "-V")},
		Features: []Feature{ICMP},
		Run: func(c *Case) {
			for _, dir := range []struct{ from, to *Side }{{c.Client, c.Server}, {c.Server, c.Client}} {
				out := dir.from.Run("ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", dir.to.Addr.String())
				m := pingRe.FindStringSubmatch(out)
				if m == nil || m[1] != "3" || m[2] != "3" {
					c.Fatalf("ping %s from the %s: want 3 of 3 answered:\n%s", dir.to.Addr, dir.from.Name, out)
				}
			}
		},
	}
}
