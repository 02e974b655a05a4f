// Package tests runs real programs under ztnc-run: dynamically linked (curl, python3) and
// statically linked (busybox, a Go program built here with CGO_ENABLED=0).
package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	ztncRun  string // the ztnc-run binary under test
	tcpprog  string // tests/testdata/tcpprog, static
	udpprog  string // tests/testdata/udpprog, static
	ifprog   string // tests/testdata/ifprog, static
	raceprog string // tests/testdata/raceprog, static
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ztnc-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ztncRun = filepath.Join(dir, "ztnc-run")
	tcpprog = filepath.Join(dir, "tcpprog")
	udpprog = filepath.Join(dir, "udpprog")
	ifprog = filepath.Join(dir, "ifprog")
	raceprog = filepath.Join(dir, "raceprog")
	build := func(out, pkg string, env ...string) error {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		return cmd.Run()
	}
	if err := build(ztncRun, "../cmd/ztnc-run"); err != nil {
		fmt.Fprintln(os.Stderr, "build ztnc-run:", err)
		return 1
	}
	for _, p := range []string{"tcpprog", "udpprog", "ifprog", "raceprog"} {
		if err := build(filepath.Join(dir, p), "./testdata/"+p, "CGO_ENABLED=0"); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", p, err)
			return 1
		}
	}
	return m.Run()
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// ztnc runs ztnc-run with args and returns what it printed and its exit status. A run that
// outlives timeout gets SIGTERM (which ztnc-run forwards), then SIGKILL.
func ztnc(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ztncRun, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		t.Fatalf("ztnc-run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("ztnc-run %q timed out\n%s", args, r)
	}
	return r
}

// local runs a shell script under ztnc-run --local 10.9.0.1/24 (plus its default IPv6
// address fd00::a09:1) and more flags if given, and fails the test unless it exits 0.
func local(t *testing.T, script string, flags ...string) result {
	t.Helper()
	args := append([]string{"--local", "10.9.0.1/24"}, flags...)
	r := ztnc(t, 3*time.Minute, append(args, "--", "sh", "-c", "set -e\n"+script)...)
	if r.code != 0 {
		t.Fatalf("script failed: %s", r)
	}
	return r
}

func need(t *testing.T, progs ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (-short)")
	}
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed (scripts/deps.sh installs it)", p)
		}
	}
}

// retry is a shell function the scripts use to wait for a server: it runs its arguments until
// they succeed (10 s at most).
const retry = `retry() { i=0; until "$@"; do i=$((i+1)); [ $i -lt 100 ] || return 1; sleep 0.1; done; }
`

func mustContain(t *testing.T, r result, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.stdout, s) {
			t.Fatalf("output lacks %q\n%s", s, r)
		}
	}
}
