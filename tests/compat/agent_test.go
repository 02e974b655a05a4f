package compat

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/compat/agent"
)

// TestAgent drives a real agent process (this test binary in agent mode) through the whole
// protocol: exit statuses, output files, environment, signals, dialing, and what happens to
// running programs when the harness goes away.
func TestAgent(t *testing.T) {
	a, err := agent.Launch(agentArgv(t), 10*time.Second, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	read := func(name string) string {
		b, err := os.ReadFile(file(name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	wait := func(p *agent.Process) {
		t.Helper()
		select {
		case <-p.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("pid %d did not exit", p.Pid)
		}
	}

	t.Run("exit status and output", func(t *testing.T) {
		os.WriteFile(file("in"), []byte("from stdin"), 0o644)
		p, err := a.Start(agent.Request{
			Argv:   []string{"sh", "-c", `cat; echo " $COMPAT_VAR $(pwd)"; echo oops >&2; exit 3`},
			Env:    []string{"COMPAT_VAR=set"},
			Dir:    dir,
			Stdin:  file("in"),
			Stdout: file("out"),
			Stderr: file("err"),
		})
		if err != nil {
			t.Fatal(err)
		}
		wait(p)
		if p.Err() == nil || p.Err().Error() != "exit status 3" {
			t.Errorf("Err() = %v, want exit status 3", p.Err())
		}
		if got, want := read("out"), "from stdin set "+dir+"\n"; got != want {
			t.Errorf("stdout %q, want %q", got, want)
		}
		if got := read("err"); got != "oops\n" {
			t.Errorf("stderr %q, want %q", got, "oops\n")
		}
	})

	t.Run("start failure", func(t *testing.T) {
		if _, err := a.Start(agent.Request{Argv: []string{filepath.Join(dir, "no-such-program")}}); err == nil {
			t.Error("starting a missing program succeeded")
		}
	})

	t.Run("credentials", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root")
		}
		p, err := a.Start(agent.Request{Argv: []string{"id", "-u"}, Stdout: file("id"), Creds: &agent.Creds{UID: 65534, GID: 65534}})
		if err != nil {
			t.Fatal(err)
		}
		wait(p)
		if got := strings.TrimSpace(read("id")); p.Err() != nil || got != "65534" {
			t.Errorf("id -u as 65534: %q, %v", got, p.Err())
		}
	})

	t.Run("signal reaches the group", func(t *testing.T) {
		// The shell's child sleeps in the same group: SIGTERM must end both.
		p, err := a.Start(agent.Request{Argv: []string{"sh", "-c", "sleep 60; echo survived"}, Stdout: file("sig")})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		wait(p)
		if p.Err() == nil || !strings.Contains(p.Err().Error(), "terminated") {
			t.Errorf("Err() = %v, want killed by terminated", p.Err())
		}
		if got := read("sig"); got != "" {
			t.Errorf("output %q after SIGTERM", got)
		}
	})

	t.Run("dial", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if err := a.Dial(addr, 5*time.Second); err != nil {
			t.Errorf("dial a listener: %v", err)
		}
		l.Close()
		if err := a.Dial(addr, 300*time.Millisecond); err == nil {
			t.Errorf("dial a closed port succeeded")
		}
	})

	t.Run("close ends programs", func(t *testing.T) {
		b, err := agent.Launch(agentArgv(t), 10*time.Second, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		p, err := b.Start(agent.Request{Argv: []string{"sleep", "60"}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		wait(p)
		if err := syscall.Kill(p.Pid, 0); err != syscall.ESRCH {
			t.Errorf("pid %d still exists after Close (kill 0: %v)", p.Pid, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Close took %v", d)
		}
	})
}
