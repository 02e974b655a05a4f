package compat

import (
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// Entries is the matrix, in the order docs/compatibility.md lists it.
func Entries() []*Entry {
	return []*Entry{
		sshEntry(),
		apacheEntry(),
		nginxEntry(),
		pythonHTTPEntry(),
		pythonHTTPIPv6Entry(),
		busyboxHTTPEntry(),
		redisEntry(),
		memcachedEntry(),
		postgresEntry(),
		mariadbEntry(),
		mongoEntry(),
		nodeEntry(),
		javaEntry(),
		goEntry(),
		goIPv6Entry(),
		dnsEntry(),
		pingEntry(),
	}
}

// versionOf asks argv for a version and finds it with pattern (see Version).
func versionOf(label, pattern string, argv ...string) Version {
	return Version{Label: label, Argv: argv, Pattern: regexp.MustCompile(pattern)}
}

// Payload writes size random bytes to name in the entry's directory and returns the path and
// the SHA-256 of the data.
func (c *Case) Payload(name string, size int) (path, sum string) {
	c.Helper()
	b := make([]byte, size)
	rand.Read(b)
	return c.WriteFile(name, b), sha256Hex(b)
}

// SHA256 returns the SHA-256 of a file, failing the entry if it cannot be read.
func (c *Case) SHA256(path string) string {
	c.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		c.Fatalf("%v", err)
	}
	return sha256Hex(b)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ReadFile returns a file in the entry's directory, failing the entry if it cannot be read.
func (c *Case) ReadFile(name string) string {
	c.Helper()
	b, err := os.ReadFile(c.Path(name))
	if err != nil {
		c.Fatalf("%v", err)
	}
	return string(b)
}

// SameFile fails the entry unless the file at path has the SHA-256 want.
func (c *Case) SameFile(what, path, want string) {
	c.Helper()
	if got := c.SHA256(path); got != want {
		c.Fatalf("%s: sha256 %s, want %s", what, got, want)
	}
}

// Curl fetches url with curl on the client side into the entry's directory and checks that
// the body has the SHA-256 want.
func (c *Case) Curl(url, want string) {
	c.Helper()
	out := c.Path(fmt.Sprintf("curl-%d.out", c.seq.Add(1)))
	c.Client.Run("curl", "--silent", "--show-error", "--fail", "--globoff", "--max-time", "60", "-o", out, url)
	c.SameFile("curl "+url, out, want)
}

// CurlParallel fetches every url at once (curl --parallel) on the client side and returns the
// bodies in order.
func (c *Case) CurlParallel(urls ...string) []string {
	c.Helper()
	var config strings.Builder
	var outs []string
	for _, u := range urls {
		out := c.Path(fmt.Sprintf("curl-%d.out", c.seq.Add(1)))
		outs = append(outs, out)
		fmt.Fprintf(&config, "url = %q\noutput = %q\n", u, out)
	}
	list := c.WriteFile(fmt.Sprintf("curl-%d.config", c.seq.Add(1)), []byte(config.String()))
	c.Client.Run("curl", "--silent", "--show-error", "--fail", "--max-time", "60",
		"--parallel", "--parallel-immediate", "--parallel-max", fmt.Sprint(len(urls)), "--config", list)
	bodies := make([]string, len(outs))
	for i, o := range outs {
		b, err := os.ReadFile(o)
		if err != nil {
			c.Fatalf("%v", err)
		}
		bodies[i] = string(b)
	}
	return bodies
}

// needStatic fails the entry unless the executable has no ELF interpreter (it is statically
// linked): the entry is there to prove that ztnc needs no dynamic loader.
func (c *Case) needStatic(name string) {
	c.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		c.Fatalf("%v", err)
	}
	f, err := elf.Open(path)
	if err != nil {
		c.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			c.Fatalf("%s is dynamically linked; this entry needs a static binary", path)
		}
	}
}

// countDistinct returns how many different values match group 1 of re in the texts.
func countDistinct(re *regexp.Regexp, texts []string) int {
	seen := make(map[string]bool)
	for _, t := range texts {
		if m := re.FindStringSubmatch(t); m != nil {
			seen[m[1]] = true
		}
	}
	return len(seen)
}

// fill replaces {{key}} in a template.
func fill(tmpl string, kv ...any) string {
	for i := 0; i+1 < len(kv); i += 2 {
		tmpl = strings.ReplaceAll(tmpl, "{{"+fmt.Sprint(kv[i])+"}}", fmt.Sprint(kv[i+1]))
	}
	if i := strings.Index(tmpl, "{{"); i >= 0 {
		panic("fill: unfilled key at " + clip(tmpl[i:], 40))
	}
	return tmpl
}
