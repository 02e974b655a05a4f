package compat

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/ztnc/ztnc/tests/lab"
)

// peerLine is what the entries' "who am I talking to" endpoints answer.
var (
	peerRe   = regexp.MustCompile(`peer=(\S+)`)
	workerRe = regexp.MustCompile(`worker=(\d+)`)
)

// checkPeers fails the entry unless every body names the client's address as the peer: the
// server's accept/getpeername saw where the connection really came from.
func (c *Case) checkPeers(bodies []string) {
	c.Helper()
	for _, b := range bodies {
		m := peerRe.FindStringSubmatch(b)
		if m == nil {
			c.Fatalf("no peer in response %q", clip(b, 200))
		}
		if got := strings.TrimPrefix(m[1], "::ffff:"); got != c.Client.Addr.String() {
			c.Fatalf("server saw the client as %s, want %s", m[1], c.Client.Addr)
		}
	}
}

func apacheEntry() *Entry {
	const conf = `ServerRoot "{{root}}"
ServerName compat.test
Listen {{listen}}
PidFile "{{root}}/apache2.pid"
DefaultRuntimeDir "{{root}}/run"
Mutex file:{{root}}/run default
ErrorLog /dev/stderr
LogLevel warn
LogFormat "%a pid=%P \"%r\" %>s %B" compat
CustomLog /dev/stdout compat
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule cgi_module /usr/lib/apache2/modules/mod_cgi.so
User #{{uid}}
Group #{{gid}}
StartServers 4
MinSpareServers 4
MaxSpareServers 8
MaxRequestWorkers 16
KeepAlive Off
DocumentRoot "{{root}}/htdocs"
<Directory "{{root}}/htdocs">
    Require all granted
</Directory>
ScriptAlias /cgi-bin/ "{{root}}/cgi-bin/"
<Directory "{{root}}/cgi-bin">
    Require all granted
</Directory>
`
	// The CGI runs in a process that the prefork child forks; it names the child ($PPID) and
	// the peer, and sleeps so that concurrent requests need several children.
	const cgi = `#!/bin/sh
sleep 0.3
printf 'Content-Type: text/plain\r\n\r\n'
printf 'peer=%s worker=%s\n' "$REMOTE_ADDR" "$PPID"
`
	return &Entry{
		Name:     "apache",
		Program:  "Apache httpd (prefork MPM) + curl",
		Checks:   "256 KiB file by sha256; 8 concurrent CGI requests served by several prefork children, each seeing the client's address",
		Needs:    []string{"apache2", "curl"},
		Versions: []Version{versionOf("", `Apache/\S+`, "apache2", "-v"), versionOf("curl", `curl (\S+)`, "curl", "--version")},
		Run: func(c *Case) {
			root := c.Path("apache")
			c.Mkdir("apache/run")
			_, sum := c.Payload("apache/htdocs/blob.bin", 256<<10)
			c.WriteFile("apache/cgi-bin/peer", []byte(cgi))
			c.Host("chmod", "755", c.Path("apache/cgi-bin/peer"))
			port := c.Port()
			c.WriteFile("apache/apache2.conf", []byte(fill(conf, "root", root,
				"listen", c.Server.HostPort(port), "uid", c.User.UID, "gid", c.User.GID)))
			srv := c.Server.Start("apache2", "/usr/sbin/apache2", "-d", root, "-f", root+"/apache2.conf", "-DFOREGROUND")
			srv.WaitTCP(port)

			base := "http://" + c.Server.HostPort(port)
			c.Curl(base+"/blob.bin", sum)
			var urls []string
			for i := 0; i < 8; i++ {
				urls = append(urls, fmt.Sprintf("%s/cgi-bin/peer?%d", base, i))
			}
			bodies := c.CurlParallel(urls...)
			c.checkPeers(bodies)
			children := countDistinct(workerRe, bodies)
			if children < 2 {
				c.Fatalf("8 concurrent requests were served by %d prefork child(ren), want several", children)
			}
			c.Note("%d prefork children served 8 concurrent requests", children)
		},
	}
}

func nginxEntry() *Entry {
	const conf = `worker_processes 4;
pid {{root}}/nginx.pid;
error_log stderr warn;
user {{user}};
events {
    worker_connections 64;
    accept_mutex on;
    accept_mutex_delay 50ms;
}
http {
    log_format compat 'worker=$pid peer=$remote_addr $request_uri $status';
    access_log {{root}}/access.log compat;
    client_body_temp_path {{root}}/tmp/body;
    proxy_temp_path {{root}}/tmp/proxy;
    fastcgi_temp_path {{root}}/tmp/fastcgi;
    uwsgi_temp_path {{root}}/tmp/uwsgi;
    scgi_temp_path {{root}}/tmp/scgi;
    sendfile on;
    server {
        listen {{listen}};
        root {{root}}/html;
        location /slow/ {
            alias {{root}}/html/;
            limit_rate 256k;
        }
    }
}
`
	return &Entry{
		Name:     "nginx",
		Program:  "nginx (4 workers, accept_mutex on) + curl",
		Checks:   "2 MiB file (sendfile) by sha256; 24 concurrent rate-limited downloads by sha256, each seeing the client's address",
		Needs:    []string{"nginx", "curl"},
		Versions: []Version{versionOf("", `nginx/\S+`, "nginx", "-v"), versionOf("curl", `curl (\S+)`, "curl", "--version")},
		Run: func(c *Case) {
			root := c.Path("nginx")
			c.Mkdir("nginx/tmp")
			_, sum := c.Payload("nginx/html/blob.bin", 2<<20)
			_, smallSum := c.Payload("nginx/html/small.bin", 512<<10)
			port := c.Port()
			c.WriteFile("nginx/nginx.conf", []byte(fill(conf, "root", root,
				"listen", c.Server.HostPort(port), "user", c.User.Name)))
			srv := c.Server.Start("nginx", "nginx", "-p", root, "-e", "stderr", "-c", root+"/nginx.conf", "-g", "daemon off;")
			srv.WaitTCP(port)

			base := "http://" + c.Server.HostPort(port)
			c.Curl(base+"/blob.bin", sum)
			// Slow downloads at once: connections that stay open while the workers take turns
			// on the accept mutex (which workers accept is nginx's choice, so only noted).
			const n = 24
			var urls []string
			for i := 0; i < n; i++ {
				urls = append(urls, fmt.Sprintf("%s/slow/small.bin?%d", base, i))
			}
			for i, body := range c.CurlParallel(urls...) {
				if got := sha256Hex([]byte(body)); got != smallSum {
					c.Fatalf("slow download %d: sha256 %s, want %s", i, got, smallSum)
				}
			}
			log := strings.Split(strings.TrimSpace(c.ReadFile("nginx/access.log")), "\n")
			var slow []string
			for _, line := range log {
				if strings.Contains(line, "/slow/") {
					slow = append(slow, line)
				}
			}
			if len(slow) != n {
				c.Fatalf("access log has %d slow downloads, want %d", len(slow), n)
			}
			c.checkPeers(slow)
			c.Note("%d of 4 workers served %d concurrent downloads", countDistinct(workerRe, slow), n)
		},
	}
}

func pythonHTTPEntry() *Entry { return pythonHTTP(false) }

func pythonHTTPIPv6Entry() *Entry { return pythonHTTP(true) }

// pythonHTTP is the http.server entry, over IPv4 or over IPv6.
func pythonHTTP(ipv6 bool) *Entry {
	e := &Entry{
		Name:     "python-http",
		Program:  "python3 -m http.server + curl",
		Checks:   "1 MiB file by sha256; directory listing names it; the server logs the client's address",
		Needs:    []string{"/usr/bin/python3", "curl"},
		Versions: []Version{versionOf("", `Python \S+`, "/usr/bin/python3", "--version"), versionOf("curl", `curl (\S+)`, "curl", "--version")},
		Short:    !ipv6,
	}
	if ipv6 {
		e.Name += "-ipv6"
		e.Program += " over IPv6"
		e.Features = []Feature{IPv6}
	}
	e.Run = func(c *Case) {
		server, client := c.Server.Addr, c.Client.Addr
		if ipv6 {
			server, client = c.Server.Addr6, c.Client.Addr6
		}
		_, sum := c.Payload("www/blob.bin", 1<<20)
		port := c.Port()
		srv := c.Server.Start("http.server", "/usr/bin/python3", "-m", "http.server", fmt.Sprint(port),
			"--bind", server.String(), "--directory", c.Path("www"))
		srv.WaitAddr(lab.HostPort(server, port))
		base := "http://" + lab.HostPort(server, port)
		c.Curl(base+"/blob.bin", sum)
		listing := c.Client.Run("curl", "--silent", "--show-error", "--fail", "--globoff", base+"/")
		if !strings.Contains(listing, `href="blob.bin"`) {
			c.Fatalf("directory listing does not name blob.bin:\n%s", clip(listing, 400))
		}
		if !strings.Contains(srv.Output(), client.String()+" - - [") {
			c.Fatalf("http.server did not log a request from %s:\n%s", client, lastLines(srv.Output(), 5))
		}
	}
	return e
}

func busyboxHTTPEntry() *Entry {
	return &Entry{
		Name:     "busybox-httpd",
		Program:  "busybox httpd + wget (static binary) + curl",
		Checks:   "1 MiB file by sha256 with busybox wget and with curl",
		Needs:    []string{"busybox", "curl"},
		Versions: []Version{versionOf("", `BusyBox v\S+`, "busybox")},
		Short:    true,
		Run: func(c *Case) {
			c.needStatic("busybox")
			_, sum := c.Payload("www/blob.bin", 1<<20)
			port := c.Port()
			srv := c.Server.Start("httpd", "busybox", "httpd", "-f", "-vv", "-p", c.Server.HostPort(port), "-h", c.Path("www"))
			srv.WaitTCP(port)
			url := "http://" + c.Server.HostPort(port) + "/blob.bin"
			out := c.Path("wget.out")
			c.Client.Run("busybox", "wget", "-q", "-O", out, url)
			c.SameFile("busybox wget", out, sum)
			c.Curl(url, sum)
		},
	}
}
