package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it kills the process group.
const stopGrace = 3 * time.Second

// Proc is a long-lived process started by Host.Start or Endpoint.Start. Its stdout and stderr
// go to the test log line by line and are kept (the last outputLimit bytes) for Output.
// It runs in a process group of its own, which Stop and the test's cleanup kill.
type Proc struct {
	Name string
	Cmd  *exec.Cmd

	out  *logWriter
	done chan struct{}
	err  error
	stop sync.Once
}

// startProc starts argv (already wrapped for the namespace) and registers its teardown.
func startProc(t T, label string, argv []string) *Proc {
	t.Helper()
	p := &Proc{Name: label, done: make(chan struct{})}
	p.out = newLogWriter(t, label)
	p.Cmd = command(context.Background(), argv)
	p.Cmd.Stdout = p.out
	p.Cmd.Stderr = p.out
	t.Logf("%s: start: %s", label, Quote(argv))
	if err := StartCmd(p.Cmd); err != nil {
		t.Fatalf("%s: start %s: %v", label, Quote(argv), err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		p.out.flush()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil && !isSignaled(err) {
			t.Logf("%s: exited: %v", label, err)
		}
		p.out.close()
	})
	return p
}

// command returns an exec.Cmd for argv in a new process group, killed (group and all) when ctx
// is done and if the lab's own process dies.
func command(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Children that keep stdout open must not keep Wait from returning.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

var (
	spawnOnce sync.Once
	spawnc    = make(chan func())
)

// StartCmd starts cmd from one OS thread that lives as long as the program. The kernel sends
// Pdeathsig when the thread that forked a child exits, not the process, and the Go runtime
// ends threads that were locked to a goroutine (Host.Do does that): a child with Pdeathsig
// forked from such a thread would be killed at a random moment.
func StartCmd(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread()
			for f := range spawnc {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnc <- func() { errc <- cmd.Start() }
	return <-errc
}

// Pid is the process ID (also its process group ID).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Stop ends the process group: SIGTERM, then SIGKILL after stopGrace. It returns the exit
// error, which is a signal error when Stop ended the process. Calling it again is harmless.
func (p *Proc) Stop() error {
	p.stop.Do(func() {
		pgid := p.Cmd.Process.Pid
		if p.Running() {
			syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(stopGrace):
			}
		}
		// Kill what is left of the group even when the leader has gone (daemons' workers).
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	})
	return p.err
}

// Signal sends sig to the process (not its group).
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Output returns the output captured so far (the last outputLimit bytes).
func (p *Proc) Output() string { return p.out.String() }

// WaitOutput waits until the process has printed s (a server's "listening" line: a readiness
// check that, unlike a probe connection, the server does not see).
func (p *Proc) WaitOutput(s string, timeout time.Duration) error {
	return poll(timeout, func() error {
		if strings.Contains(p.Output(), s) {
			return nil
		}
		if !p.Running() {
			return stopPolling{fmt.Errorf("%s exited (%v) before printing %q", p.Name, p.Wait(), s)}
		}
		return fmt.Errorf("%s has not printed %q", p.Name, s)
	})
}

func isSignaled(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return ws.Signaled()
		}
	}
	return false
}

// outputLimit bounds the output a Proc keeps in memory.
const outputLimit = 256 << 10

// logWriter sends complete lines to the test log with a label and keeps the recent output.
// After close (the test's cleanup) it only keeps output: a late t.Logf would panic.
type logWriter struct {
	t     T
	label string

	mu     sync.Mutex
	line   []byte
	kept   bytes.Buffer
	closed bool
}

func newLogWriter(t T, label string) *logWriter { return &logWriter{t: t, label: label} }

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kept.Write(b)
	if over := w.kept.Len() - outputLimit; over > 0 {
		w.kept.Next(over)
	}
	w.line = append(w.line, b...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		w.logLocked(w.line[:i])
		w.line = w.line[i+1:]
	}
	return len(b), nil
}

func (w *logWriter) logLocked(line []byte) {
	if !w.closed {
		w.t.Logf("%s: %s", w.label, bytes.TrimRight(line, "\r"))
	}
}

func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.line) > 0 {
		w.logLocked(w.line)
		w.line = nil
	}
}

func (w *logWriter) close() {
	w.flush()
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.kept.String()
}

// Quote renders argv as a shell would need it, for logs and reports.
func Quote(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r))
		}) < 0 {
			b.WriteString(a)
			continue
		}
		fmt.Fprintf(&b, "'%s'", strings.ReplaceAll(a, "'", `'\''`))
	}
	return b.String()
}
