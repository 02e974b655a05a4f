package compat

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ztnc/ztnc/tests/compat/agent"
	"github.com/ztnc/ztnc/tests/lab"
)

// Defaults for programs run to completion and for servers to come up.
const (
	execTimeout  = 2 * time.Minute
	serveTimeout = 60 * time.Second
	stopGrace    = 5 * time.Second
)

// Case is one entry running in one placement: what an entry's Run gets. Its Fatalf ends the
// entry as failed; Skipf ends it as skipped.
type Case struct {
	lab.T
	Entry     *Entry
	Placement string
	Env       *Env
	// User is the unprivileged account (Env.User).
	User *Account
	// Dir is the entry's work directory, owned by User, removed after the run.
	Dir string
	// Server and Client are the two sides; in some placements they are the same agent.
	Server, Client *Side

	seq   atomic.Int32
	ports *portSet

	mu    sync.Mutex
	notes []string
	procs []*Proc
}

// Note adds a line to the entry's result in the report (a measured number, what was seen).
func (c *Case) Note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	c.Logf("note: %s", s)
	c.mu.Lock()
	c.notes = append(c.notes, s)
	c.mu.Unlock()
}

// Port returns a TCP port that no other entry of this run uses and that is free on the host.
func (c *Case) Port() int { return c.ports.next(c) }

// Path returns name inside the entry's directory.
func (c *Case) Path(name string) string { return filepath.Join(c.Dir, name) }

// WriteFile writes a file in the entry's directory, readable by everyone, and returns its path.
func (c *Case) WriteFile(name string, data []byte) string {
	c.Helper()
	p := c.Path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		c.Fatalf("%v", err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		c.Fatalf("%v", err)
	}
	return p
}

// Mkdir creates a directory in the entry's directory owned by the account and returns it.
func (c *Case) Mkdir(name string) string {
	c.Helper()
	p := c.Path(name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		c.Fatalf("%v", err)
	}
	if err := c.User.Chown(p); err != nil {
		c.Fatalf("%v", err)
	}
	return p
}

// Host runs a set-up command as root directly on the host, outside the placement (key
// generation, initdb): nothing it does touches the network. It fails the entry if the command
// fails, and returns its standard output.
func (c *Case) Host(argv ...string) string {
	c.Helper()
	return c.HostCmd(Cmd{Argv: argv})
}

// HostCmd is Host for a Cmd (another user, input, environment).
func (c *Case) HostCmd(cmd Cmd) string {
	c.Helper()
	timeout := cmd.Timeout
	if timeout == 0 {
		timeout = execTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	x := exec.CommandContext(ctx, cmd.Argv[0], cmd.Argv[1:]...)
	x.Dir = cmd.Dir
	if x.Dir == "" {
		x.Dir = c.Dir
	}
	x.Env = append(os.Environ(), cmd.Env...)
	if cmd.As != nil {
		cr := cmd.As.Creds()
		x.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: cr.UID, Gid: cr.GID, Groups: cr.Groups}}
		x.Env = append(x.Env, cmd.As.Env()...)
	}
	if cmd.Stdin != "" {
		f, err := os.Open(cmd.Stdin)
		if err != nil {
			c.Fatalf("set-up: %v", err)
		}
		defer f.Close()
		x.Stdin = f
	}
	var stdout, stderr bytes.Buffer
	x.Stdout, x.Stderr = &stdout, &stderr
	c.Logf("host: run: %s", lab.Quote(cmd.Argv))
	if err := x.Run(); err != nil {
		c.Fatalf("set-up: %s: %v\n%s", lab.Quote(cmd.Argv), err, lastLines(stderr.String()+stdout.String(), 20))
	}
	return stdout.String()
}

// Cmd is a program to run on a side.
type Cmd struct {
	Argv []string
	Env  []string
	Dir  string
	// As runs the program as this account (its HOME, USER, LOGNAME too); nil runs it as root.
	As *Account
	// Stdin is a file to read standard input from; "" is /dev/null.
	Stdin string
	// Timeout bounds Exec; 0 is execTimeout.
	Timeout time.Duration
}

// Side is where one end of an entry runs.
type Side struct {
	Name  string
	Addr  netip.Addr
	Addr6 netip.Addr // when the entry needs IPv6

	c     *Case
	agent *agent.Client
}

// HostPort is Addr:port in the form URLs and command lines take.
func (s *Side) HostPort(port int) string { return lab.HostPort(s.Addr, port) }

func (s *Side) request(cmd Cmd, name string) (agent.Request, string, string) {
	n := s.c.seq.Add(1)
	logs := filepath.Join(s.c.Dir, "logs")
	os.MkdirAll(logs, 0o755)
	base := filepath.Join(logs, fmt.Sprintf("%02d-%s-%s", n, s.Name, filepath.Base(name)))
	req := agent.Request{
		Argv:   cmd.Argv,
		Env:    cmd.Env,
		Dir:    cmd.Dir,
		Stdin:  cmd.Stdin,
		Stdout: base + ".out",
		Stderr: base + ".err",
	}
	if req.Dir == "" {
		req.Dir = s.c.Dir
	}
	if cmd.As != nil {
		req.Creds = cmd.As.Creds()
		req.Env = append(cmd.As.Env(), req.Env...)
	}
	return req, req.Stdout, req.Stderr
}

// Exec runs a program on the side to completion and returns its standard output. Its
// standard error is in the error when it fails, and in the test log.
func (s *Side) Exec(cmd Cmd) (string, error) {
	s.c.Helper()
	req, stdout, stderr := s.request(cmd, cmd.Argv[0])
	timeout := cmd.Timeout
	if timeout == 0 {
		timeout = execTimeout
	}
	s.c.Logf("%s: run: %s", s.Name, lab.Quote(cmd.Argv))
	p, err := s.agent.Start(req)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s.Name, err)
	}
	select {
	case <-p.Done():
	case <-time.After(timeout):
		p.Signal(syscall.SIGKILL)
		<-p.Done()
		err = fmt.Errorf("killed after %v", timeout)
	}
	if err == nil {
		err = p.Err()
	}
	out, _ := os.ReadFile(stdout)
	errText, _ := os.ReadFile(stderr)
	if len(errText) > 0 {
		s.c.Logf("%s: %s: stderr:\n%s", s.Name, filepath.Base(cmd.Argv[0]), lastLines(string(errText), 40))
	}
	if err != nil {
		return string(out), fmt.Errorf("%s: %s: %v\n%s", s.Name, lab.Quote(cmd.Argv), err,
			lastLines(string(errText)+string(out), 20))
	}
	return string(out), nil
}

// Run runs argv as root on the side and returns its standard output; it fails the entry if
// the program fails.
func (s *Side) Run(argv ...string) string {
	s.c.Helper()
	return s.RunCmd(Cmd{Argv: argv})
}

// RunCmd is Exec that fails the entry if the program fails.
func (s *Side) RunCmd(cmd Cmd) string {
	s.c.Helper()
	out, err := s.Exec(cmd)
	if err != nil {
		s.c.Fatalf("%v", err)
	}
	return out
}

// Start starts a long-lived program (a server) as root on the side.
func (s *Side) Start(name string, argv ...string) *Proc {
	s.c.Helper()
	return s.StartCmd(name, Cmd{Argv: argv})
}

// StartCmd starts a long-lived program on the side. The entry's cleanup stops it; when the
// entry fails, the end of its output goes to the test log.
func (s *Side) StartCmd(name string, cmd Cmd) *Proc {
	s.c.Helper()
	req, stdout, stderr := s.request(cmd, name)
	s.c.Logf("%s: start %s: %s", s.Name, name, lab.Quote(cmd.Argv))
	p, err := s.agent.Start(req)
	if err != nil {
		s.c.Fatalf("%s: %v", s.Name, err)
	}
	proc := &Proc{Name: name, side: s, p: p, stdout: stdout, stderr: stderr}
	s.c.mu.Lock()
	s.c.procs = append(s.c.procs, proc)
	s.c.mu.Unlock()
	s.c.Cleanup(func() { proc.Stop() })
	return proc
}

// Proc is a long-lived program started on a side.
type Proc struct {
	Name string

	side           *Side
	p              *agent.Process
	stdout, stderr string
	stop           sync.Once
}

// Output returns what the program has written so far (stdout, then stderr).
func (p *Proc) Output() string {
	out, _ := os.ReadFile(p.stdout)
	errText, _ := os.ReadFile(p.stderr)
	return string(out) + string(errText)
}

// Stop ends the program's process group: SIGTERM, then SIGKILL after a grace period.
func (p *Proc) Stop() {
	p.stop.Do(func() {
		select {
		case <-p.p.Done():
			return
		default:
		}
		p.p.Signal(syscall.SIGTERM)
		select {
		case <-p.p.Done():
		case <-time.After(stopGrace):
			p.p.Signal(syscall.SIGKILL)
			select {
			case <-p.p.Done():
			case <-time.After(stopGrace):
			}
		}
	})
}

// WaitTCP waits until the client side can connect to port on the server side; it fails the
// entry when that does not happen in time or when the program exits first.
func (p *Proc) WaitTCP(port int) {
	p.side.c.Helper()
	p.WaitAddr(p.side.c.Server.HostPort(port))
}

// WaitAddr is WaitTCP for any address of the server ("ip:port", "[ipv6]:port").
func (p *Proc) WaitAddr(addr string) {
	c := p.side.c
	c.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Client.agent.Dial(addr, serveTimeout) }()
	select {
	case err := <-done:
		if err != nil {
			c.Fatalf("%s not reachable from the client at %s: %v\n%s", p.Name, addr, err, lastLines(p.Output(), 20))
		}
	case <-p.p.Done():
		c.Fatalf("%s exited (%v) before it accepted connections on %s:\n%s", p.Name, p.p.Err(), addr, lastLines(p.Output(), 30))
	}
}

// Eventually retries fn every 200 ms until it returns nil or timeout passes, and fails the
// entry with fn's last error then. For servers that accept connections before they serve.
func (c *Case) Eventually(what string, timeout time.Duration, fn func() error) {
	c.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Equal fails the entry unless got == want (after trimming surrounding white space).
func (c *Case) Equal(what, got, want string) {
	c.Helper()
	if g, w := strings.TrimSpace(got), strings.TrimSpace(want); g != w {
		c.Fatalf("%s: got %q, want %q", what, clip(g, 400), clip(w, 400))
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// portSet hands out host TCP ports that are free now and that no other entry of the run got.
type portSet struct {
	mu   sync.Mutex
	used map[int]bool
}

func newPortSet() *portSet { return &portSet{used: make(map[int]bool)} }
