package compat

import (
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
)

// Entry is one line of the matrix: a real server and its real client, and a check on the data
// that went between them.
type Entry struct {
	// Name identifies the entry in test names and on the command line (-run TestMatrix/host/redis).
	Name string
	// Program is what the matrix calls it.
	Program string
	// Checks says what the entry proves, in one line.
	Checks string
	// Needs are executables that must be installed (names looked up in PATH, or paths).
	Needs []string
	// Versions say how to ask the programs for their versions.
	Versions []Version
	// Features are what the entry needs beyond TCP.
	Features []Feature
	// Short puts the entry in the fast subset that `go test -short` runs.
	Short bool
	// Broken marks placements where the entry is known to fail, with the reason.
	Broken []Broken
	// Run starts the server on c.Server, drives it with its client on c.Client and checks the
	// data; it ends the entry with c.Fatalf when something is wrong.
	Run func(c *Case)
}

// Version is a command that prints a program's version, and the pattern that finds it in the
// output (stdout and stderr): the first submatch, or the whole match. Without Argv, Label is
// the version (of what the entry builds or installs at a pinned version).
type Version struct {
	Label   string
	Argv    []string
	Pattern *regexp.Regexp
}

// Broken marks an entry as known to fail in a placement. Issue is the number of the issue that
// tracks it; Reason is one line.
type Broken struct {
	Placement string
	Issue     int
	Reason    string
}

func (b Broken) String() string { return fmt.Sprintf("#%d: %s", b.Issue, b.Reason) }

// brokenIn returns the mark for placement, if any.
func (e *Entry) brokenIn(placement string) (Broken, bool) {
	for _, b := range e.Broken {
		if b.Placement == placement {
			return b, true
		}
	}
	return Broken{}, false
}

// missingTools lists the executables in Needs that are not installed.
func (e *Entry) missingTools() []string {
	var missing []string
	for _, n := range e.Needs {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	return missing
}

// version asks the programs for their versions, on the host.
func (e *Entry) version() string {
	var parts []string
	for _, v := range e.Versions {
		if len(v.Argv) == 0 {
			parts = append(parts, v.Label)
			continue
		}
		out, _ := exec.Command(v.Argv[0], v.Argv[1:]...).CombinedOutput()
		found := "?"
		if m := v.Pattern.FindStringSubmatch(string(out)); m != nil {
			found = m[len(m)-1]
		}
		if v.Label != "" {
			found = v.Label + " " + found
		}
		parts = append(parts, found)
	}
	return strings.Join(parts, ", ")
}

// next returns a fresh port (see portSet).
func (s *portSet) next(c *Case) int {
	c.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < 100; i++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			c.Fatalf("pick a port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !s.used[port] {
			s.used[port] = true
			return port
		}
	}
	c.Fatalf("pick a port: no fresh one")
	return 0
}
