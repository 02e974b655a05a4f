// Package tests runs real programs under ztnc-run: dynamically linked (curl, python3) and
// statically linked (busybox, a Go program built here with CGO_ENABLED=0).
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

var (
	ztncRun    string // the ztnc-run binary under test
	tcpprog    string // tests/testdata/tcpprog, static
	udpprog    string // tests/testdata/udpprog, static
	ifprog     string // tests/testdata/ifprog, static
	raceprog   string // tests/testdata/raceprog, static
	parityprog string // tests/testdata/parityprog, static
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
	tcpprog = filepath.Join(dir, "tcpprog")
	udpprog = filepath.Join(dir, "udpprog")
	ifprog = filepath.Join(dir, "ifprog")
	raceprog = filepath.Join(dir, "raceprog")
	parityprog = filepath.Join(dir, "parityprog")
	build := func(out, pkg string, env ...string) error {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		return cmd.Run()
	}
	if ztncRun, err = lab.BuildZtncRun(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, p := range []string{"tcpprog", "udpprog", "ifprog", "raceprog", "parityprog"} {
		if err := build(filepath.Join(dir, p), "./testdata/"+p, "CGO_ENABLED=0"); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", p, err)
			return 1
		}
	}
	return m.Run()
}

// result is a command that has run to its end.
type result = lab.Result

// ztnc runs ztnc-run with args and returns what it printed and its exit status. A run that
// outlives timeout gets SIGTERM (which ztnc-run forwards), then SIGKILL, and fails the test.
func ztnc(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	return lab.RunCmd(t, timeout, lab.Spec{Argv: append([]string{ztncRun}, args...)})
}

// The --local network of these tests: documentation ranges (RFC 5737, RFC 3849) on both
// families. A destination outside a program's networks goes to the host's network
// (fall-through), so a test's virtual addresses must be ones that could never reach a real
// machine, should a socket ever escape the stack.
const (
	localNet  = "198.51.100.1/24"    // the program's address 198.51.100.1
	localNet6 = "2001:db8:198::1/64" // the program's address 2001:db8:198::1
)

// onLocal returns ztnc-run's arguments for running args (`--`, the program and its arguments,
// after more flags if any) on the tests' --local network.
func onLocal(args ...string) []string {
	return append([]string{"--local", localNet, "--local", localNet6}, args...)
}

// local runs a shell script under ztnc-run on the tests' --local network (198.51.100.1 and
// 2001:db8:198::1) with more flags if given, and fails the test unless it exits 0.
func local(t *testing.T, script string, flags ...string) result {
	t.Helper()
	args := append(onLocal(flags...), "--", "sh", "-c", "set -e\n"+script)
	r := ztnc(t, 3*time.Minute, args...)
	if r.Code != 0 {
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
// they succeed (30 s at most, for a loaded machine).
const retry = `retry() { i=0; until "$@"; do i=$((i+1)); [ $i -lt 300 ] || return 1; sleep 0.1; done; }
`

func mustContain(t *testing.T, r result, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.Stdout, s) {
			t.Fatalf("output lacks %q\n%s", s, r)
		}
	}
}
