package compat

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// Env is what one matrix run shares: a work directory, the unprivileged account, the command
// that starts an agent, ztnc-run, and the installs entries need (cached across runs).
type Env struct {
	// Dir is the run's work directory (mode 0755, so the account can reach what is in it).
	Dir string
	// User is the unprivileged account.
	User *Account
	// Agent is the argv that starts an agent process (see package agent).
	Agent []string
	// Cache keeps installs (built servers, npm packages) between runs.
	Cache string

	ztnc ztncState

	mu       sync.Mutex
	installs map[string]*install
	timings  []Timing
}

// Timing is how long one install step took in this run.
type Timing struct {
	What     string
	Duration time.Duration
	Cached   bool
}

type install struct {
	once   sync.Once
	result string
	err    error
}

// NewEnv prepares a run: it needs root (servers switch users, sshd needs its privilege
// separation, namespaces). Everything it creates is removed by t's cleanup.
func NewEnv(t lab.T, agentArgv []string) *Env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("compat: the matrix needs root (accounts, servers that switch users, namespaces)")
	}
	reapStaleDirs()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", accountPrefix, os.Getpid()))
	if err != nil {
		t.Fatalf("compat: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("compat: %v", err)
	}
	user, remove, err := createAccount(filepath.Join(dir, "home"))
	if err != nil {
		t.Fatalf("compat: account: %v", err)
	}
	t.Cleanup(func() {
		if err := remove(); err != nil {
			t.Logf("compat: %v", err)
		}
	})
	t.Logf("compat: work directory %s, account %s (uid %d)", dir, user.Name, user.UID)
	return &Env{
		Dir:      dir,
		User:     user,
		Agent:    agentArgv,
		Cache:    cacheDir(),
		installs: make(map[string]*install),
	}
}

// reapStaleDirs removes the work directories of runs that no longer exist (named like their
// accounts: ztnc-compat-PID-*).
func reapStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), accountPrefix+"*-*"))
	for _, d := range dirs {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), accountPrefix), "-")
		if pid, err := strconv.Atoi(pidText); err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

// cacheDir is $ZTNC_COMPAT_CACHE, else ztnc/compat in the user's cache directory.
func cacheDir() string {
	if d := os.Getenv("ZTNC_COMPAT_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ztnc", "compat")
	}
	return filepath.Join(os.TempDir(), "ztnc-compat-cache")
}

// Install runs fn once per run for name and returns its result (a path, usually) to every
// caller; a failed install fails every entry that needs it.
func (e *Env) Install(t lab.T, name string, fn func() (string, error)) string {
	t.Helper()
	e.mu.Lock()
	in := e.installs[name]
	if in == nil {
		in = &install{}
		e.installs[name] = in
	}
	e.mu.Unlock()
	in.once.Do(func() {
		start := time.Now()
		in.result, in.err = fn()
		if in.err == nil {
			t.Logf("compat: %s ready in %v: %s", name, time.Since(start).Round(time.Millisecond), in.result)
		}
	})
	if in.err != nil {
		t.Fatalf("compat: %s: %v", name, in.err)
	}
	return in.result
}

// timed runs fn and records how long it took as what.
func (e *Env) timed(what string, cached bool, fn func() error) error {
	start := time.Now()
	err := fn()
	e.mu.Lock()
	e.timings = append(e.timings, Timing{What: what, Duration: time.Since(start), Cached: cached})
	e.mu.Unlock()
	return err
}

// Timings lists the installs this run made, in the order they finished.
func (e *Env) Timings() []Timing {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Timing(nil), e.timings...)
}

// Cached returns the directory key in the cache, creating it with build (into a temporary
// directory that is renamed into place, so that concurrent runs never see half an install).
func (e *Env) Cached(key string, build func(dir string) error) (string, error) {
	final := filepath.Join(e.Cache, key)
	if _, err := os.Stat(final); err == nil {
		e.timed(key, true, func() error { return nil })
		return final, nil
	}
	if err := os.MkdirAll(e.Cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(e.Cache, key+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := e.timed(key, false, func() error { return build(tmp) }); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, statErr := os.Stat(final); statErr == nil {
			return final, nil // another run finished first
		}
		return "", err
	}
	return final, nil
}

// goCommand is the go tool that runs these tests: the one on PATH, else the one in GOROOT
// (go test puts it first on the test's PATH anyway).
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// moduleRoot is the directory of the ztnc module.
func moduleRoot() (string, error) {
	out, err := exec.Command(goCommand(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the ztnc module")
	}
	return filepath.Dir(mod), nil
}

// run runs a setup command on the host (not in a placement) and returns its stdout; its
// stderr is in the error.
func run(dir string, env []string, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %v: %s", lab.Quote(argv), err, lastLines(stderr.String(), 15))
	}
	return stdout.String(), nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
