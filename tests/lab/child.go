package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Spec says how to start a process on the test's own host: argv, environment variables added
// to the test's, working directory ("" for the test's).
type Spec struct {
	Argv []string
	Env  []string
	Dir  string
}

func (s Spec) command(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Dir = s.Dir
	return cmd
}

// Result is a command that has run to its end: what it printed, and its exit status as a
// shell reports it (ExitCode).
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// RunCmd runs s to its end. One that outlives timeout gets SIGTERM (ztnc-run forwards it to
// its program, which may print why it hung), SIGKILL 5 s later, and fails the test; so does
// one that cannot start.
func RunCmd(t T, timeout time.Duration, s Spec) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := s.command(ctx)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited, but something it started holds its output open: what it printed is here.
		err = nil
	}
	r := Result{Stdout: out.String(), Stderr: errb.String(), Code: ExitCode(err)}
	if r.Code < 0 {
		t.Fatalf("%s: %v", Quote(s.Argv), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s timed out after %v\n%s", Quote(s.Argv), timeout, r)
	}
	return r
}

// Child is a process of the test's own host running in the background, its stdout and
// stderr kept apart for the test to read. Unlike Proc it is not in a process group of its
// own: signals reach it as they would reach a program from a shell's command line.
type Child struct {
	Name           string
	Cmd            *exec.Cmd
	Stdout, Stderr Buffer
	// Code is the exit status (ExitCode), valid once Done is closed.
	Code int

	done chan struct{}
	stop sync.Once
}

// StartChild starts s in the background; the test's cleanup stops it (Stop) and, when the test
// failed, logs its output.
func StartChild(t T, name string, s Spec) *Child {
	t.Helper()
	p := &Child{Name: name, done: make(chan struct{})}
	p.Cmd = s.command(context.Background())
	p.Cmd.Stdout, p.Cmd.Stderr = &p.Stdout, &p.Stderr
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := StartCmd(p.Cmd); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		p.Code = ExitCode(p.Cmd.Wait())
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if f, ok := t.(interface{ Failed() bool }); ok && f.Failed() {
			t.Logf("%s (%s, env %q): exit %d\nstdout:\n%s\nstderr:\n%s", name, Quote(s.Argv), s.Env, p.Code, &p.Stdout, &p.Stderr)
		}
	})
	return p
}

// Pid is the process ID.
func (p *Child) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Child) Done() <-chan struct{} { return p.done }

// Stop ends the process (SIGTERM, then SIGKILL after 10 s) and returns its exit status.
// Calling it again, or after the process exited, only returns the status.
func (p *Child) Stop() int {
	p.stop.Do(func() {
		p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.Cmd.Process.Kill()
			<-p.done
		}
	})
	return p.Code
}

// Wait waits for the process to exit by itself and returns its status; it fails the test
// when timeout passes first.
func (p *Child) Wait(t T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.Code
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v\nstdout:\n%s\nstderr:\n%s", p.Name, timeout, &p.Stdout, &p.Stderr)
		return 0
	}
}

// WaitOutput polls until cond holds for the process's stdout and stderr; it fails the test
// when the process exits first or timeout passes.
func (p *Child) WaitOutput(t T, what string, timeout time.Duration, cond func(stdout, stderr string) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond(p.Stdout.String(), p.Stderr.String()) {
		select {
		case <-p.done:
			if cond(p.Stdout.String(), p.Stderr.String()) {
				return
			}
			t.Fatalf("%s exited (%d) before %s\nstdout:\n%s\nstderr:\n%s", p.Name, p.Code, what, &p.Stdout, &p.Stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s after %v\nstdout:\n%s\nstderr:\n%s", p.Name, what, timeout, &p.Stdout, &p.Stderr)
		}
	}
}
