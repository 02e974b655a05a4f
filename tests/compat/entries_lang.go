package compat

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ztnc/ztnc/tests/lab"
)

// The Node.js, Java and Go entries run a server and a client of their own (testdata) that
// speak the same small HTTP protocol: GET /blob, POST /sha256, GET /peer. The client prints
// "blob <sha256>" eight times (concurrent fetches), "upload <sha256>" and "peer=<address>".

// httpFiles writes the blob the server serves and the file the client uploads, and returns
// their paths and SHA-256s.
func (c *Case) httpFiles() (blob, blobSum, upload, uploadSum string) {
	c.Helper()
	blob, blobSum = c.Payload("http/blob.bin", 1<<20)
	upload, uploadSum = c.Payload("http/upload.bin", 3<<20/2)
	return
}

// checkHTTPClient checks the client's report against the files' SHA-256s and the client's
// address, peer.
func (c *Case) checkHTTPClient(out, blobSum, uploadSum string, peer netip.Addr) {
	c.Helper()
	var want []string
	for i := 0; i < 8; i++ {
		want = append(want, "blob "+blobSum)
	}
	want = append(want, "upload "+uploadSum, "peer="+peer.String())
	got := strings.Split(strings.TrimSpace(out), "\n")
	for i := range got {
		got[i] = strings.Replace(got[i], "peer=::ffff:", "peer=", 1)
	}
	c.Equal("client report", strings.Join(got, "\n"), strings.Join(want, "\n"))
}

func nodeEntry() *Entry {
	return &Entry{
		Name:     "nodejs",
		Program:  "Node.js http server + http client",
		Checks:   "8 concurrent 1 MiB downloads over a keep-alive agent and a 1.5 MiB upload, by sha256; the server sees the client's address",
		Needs:    []string{"node"},
		Versions: []Version{versionOf("Node.js", `v\S+`, "node", "--version")},
		Run: func(c *Case) {
			blob, blobSum, upload, uploadSum := c.httpFiles()
			port := c.Port()
			srv := c.Server.Start("node-server", "node", testdata("node/http-server.js"), c.Server.Addr.String(), fmt.Sprint(port), blob)
			srv.WaitTCP(port)
			out := c.Client.Run("node", testdata("node/http-client.js"), "http://"+c.Server.HostPort(port), upload)
			c.checkHTTPClient(out, blobSum, uploadSum, c.Client.Addr)
		},
	}
}

func javaEntry() *Entry {
	return &Entry{
		Name:    "java",
		Program: "Java com.sun.net.httpserver server + java.net.http.HttpClient (javac in the test)",
		Checks:  "8 concurrent 1 MiB downloads and a 1.5 MiB upload, by sha256; the server sees the client's address",
		Needs:   []string{"java", "javac"},
		Versions: []Version{versionOf("Java", `version "([^"]+)"`, "java", "-version"),
			versionOf("javac", `javac (\S+)`, "javac", "-version")},
		Run: func(c *Case) {
			classes := c.Env.Install(c, "javac CompatHTTP.java", func() (string, error) { return buildJava(c.Env, "CompatHTTP") })
			blob, blobSum, upload, uploadSum := c.httpFiles()
			port := c.Port()
			srv := c.Server.Start("java-server", "java", "-cp", classes, "CompatHTTP", "serve", c.Server.Addr.String(), fmt.Sprint(port), blob)
			srv.WaitTCP(port)
			out := c.Client.Run("java", "-cp", classes, "CompatHTTP", "fetch", "http://"+c.Server.HostPort(port), upload)
			c.checkHTTPClient(out, blobSum, uploadSum, c.Client.Addr)
		},
	}
}

func goEntry() *Entry { return goHTTPEntry(false) }

func goIPv6Entry() *Entry { return goHTTPEntry(true) }

// goHTTPEntry is the static Go entry, over IPv4 or over IPv6.
func goHTTPEntry(ipv6 bool) *Entry {
	e := &Entry{
		Name:     "go-static",
		Program:  "Go net/http server + client, static (CGO_ENABLED=0)",
		Checks:   "8 concurrent 1 MiB downloads and a 1.5 MiB upload, by sha256; the server sees the client's address; the binary has no ELF interpreter",
		Needs:    []string{goCommand()},
		Versions: []Version{versionOf("", `go\d\S*`, goCommand(), "version")},
		Short:    !ipv6,
	}
	if ipv6 {
		e.Name += "-ipv6"
		e.Program += " over IPv6"
		e.Features = []Feature{IPv6}
	}
	e.Run = func(c *Case) {
		bin := c.Env.Install(c, "go build testdata/goweb (CGO_ENABLED=0)", func() (string, error) { return buildGoProgram(c.Env, "goweb") })
		c.needStatic(bin)
		blob, blobSum, upload, uploadSum := c.httpFiles()
		server, client := c.Server.Addr, c.Client.Addr
		if ipv6 {
			server, client = c.Server.Addr6, c.Client.Addr6
		}
		port := c.Port()
		srv := c.Server.Start("goweb-server", bin, "serve", lab.HostPort(server, port), blob)
		srv.WaitAddr(lab.HostPort(server, port))
		out := c.Client.Run(bin, "fetch", "http://"+lab.HostPort(server, port), upload)
		c.checkHTTPClient(out, blobSum, uploadSum, client)
	}
	return e
}
