package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// Status is the outcome of an entry in a placement.
type Status string

// Outcomes. Only Failed fails the run.
const (
	Passed      Status = "pass"
	Failed      Status = "FAIL"
	KnownBroken Status = "known broken"
	Fixed       Status = "passes, but marked known broken"
	Pending     Status = "pending"
	Skipped     Status = "skipped"
)

// Result is one cell of the matrix.
type Result struct {
	Entry     string
	Placement string
	Status    Status
	// Detail holds the notes of a passing entry, the failure, or why the entry did not run.
	Detail   string
	Duration time.Duration
}

// PlacementRun says whether a placement ran and, if not, why.
type PlacementRun struct {
	Name, About string
	// Unavailable says why the placement did not run; "" when it ran.
	Unavailable string
	// Detail says what it ran with (which ztnc-run).
	Detail string
}

// Matrix runs entries in placements and keeps what happened for the report.
type Matrix struct {
	Env *Env
	// Strict fails entries whose programs are not installed instead of skipping them.
	Strict bool
	Start  time.Time

	ports *portSet

	mu         sync.Mutex
	results    []Result
	placements []PlacementRun
	versions   map[string]string
}

// NewMatrix returns a matrix that runs in env.
func NewMatrix(env *Env, strict bool) *Matrix {
	return &Matrix{Env: env, Strict: strict, Start: time.Now(), ports: newPortSet(), versions: make(map[string]string)}
}

// Opened records that placement p ran as nw, or why it could not (err).
func (m *Matrix) Opened(p Placement, nw Network, err error) {
	run := PlacementRun{Name: p.Name(), About: p.About()}
	if err != nil {
		run.Unavailable = err.Error()
	}
	if d, ok := nw.(interface{ Detail() string }); ok {
		run.Detail = d.Detail()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.placements = append(m.placements, run)
}

func (m *Matrix) record(r Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.results = append(m.results, r)
}

func (m *Matrix) version(e *Entry) string {
	m.mu.Lock()
	v, ok := m.versions[e.Name]
	m.mu.Unlock()
	if ok {
		return v
	}
	v = e.version()
	m.mu.Lock()
	m.versions[e.Name] = v
	m.mu.Unlock()
	return v
}

// Run runs entry e in an opened placement as the test t and records the result. A failure
// fails t unless the entry is marked broken in the placement.
func (m *Matrix) Run(t *testing.T, placement string, nw Network, e *Entry) {
	start := time.Now()
	res := Result{Entry: e.Name, Placement: placement}
	m.version(e)
	if missing := e.missingTools(); len(missing) > 0 {
		res.Detail = "not installed: " + strings.Join(missing, ", ") + " (make deps)"
		if m.Strict {
			res.Status = Failed
			m.record(res)
			t.Fatalf("%s", res.Detail)
		}
		res.Status = Skipped
		m.record(res)
		t.Skip(res.Detail)
	}
	for _, f := range e.Features {
		if why := nw.Missing(f); why != "" {
			res.Status, res.Detail = Pending, why
			m.record(res)
			t.Skip(why)
		}
	}

	rec := &recorder{t: t}
	var c *Case
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				rec.end(Failed, fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
			}
		}()
		dir := filepath.Join(m.Env.Dir, placement, e.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			rec.Fatalf("%v", err)
		}
		if err := m.Env.User.Chown(dir); err != nil {
			rec.Fatalf("%v", err)
		}
		server, client := nw.Pair(rec, dir)
		c = &Case{T: rec, Entry: e, Placement: placement, Env: m.Env, User: m.Env.User, Dir: dir, ports: m.ports}
		c.Server = &Side{Name: "server", Addr: server.Addr, Addr6: server.Addr6, c: c, agent: server.Agent}
		c.Client = &Side{Name: "client", Addr: client.Addr, Addr6: client.Addr6, c: c, agent: client.Agent}
		e.Run(c)
	}()
	<-done
	res.Duration = time.Since(start)

	status, msg := rec.outcome()
	if c != nil {
		c.mu.Lock()
		res.Detail = strings.Join(c.notes, "; ")
		procs := c.procs
		c.mu.Unlock()
		if status == Failed {
			for _, p := range procs {
				t.Logf("%s output (end):\n%s", p.Name, lastLines(p.Output(), 40))
			}
		}
	}
	res.Status, res.Detail = judge(status, msg, res.Detail, e, placement)
	m.record(res)
	switch res.Status {
	case Skipped:
		t.Skip(msg)
	case KnownBroken:
		t.Skipf("known broken (%s): %s", res.Detail, msg)
	case Failed:
		t.Errorf("%s", msg)
	case Fixed:
		t.Logf("%s", res.Detail)
	}
}

// judge turns how an entry ended (status, its message, its notes) into the matrix's verdict:
// a failure in a placement where the entry is marked broken is known broken, and a pass there
// says that the mark should go.
func judge(status Status, msg, notes string, e *Entry, placement string) (Status, string) {
	mark, marked := e.brokenIn(placement)
	switch {
	case status == Skipped:
		return Skipped, msg
	case status == Failed && marked:
		return KnownBroken, mark.String()
	case status == Failed:
		return Failed, firstLine(msg)
	case marked:
		return Fixed, fmt.Sprintf("passes, but is marked known broken (%s): remove the mark", mark)
	}
	return Passed, notes
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return clip(line, 300)
}

// recorder is the lab.T of an entry's goroutine: it passes logs and cleanups to the test, and
// turns Fatalf and Skipf into an outcome that Matrix.Run judges (a known-broken entry must not
// fail the test).
type recorder struct {
	t *testing.T

	mu     sync.Mutex
	status Status
	msg    string
}

func (r *recorder) Helper()                         {}
func (r *recorder) Name() string                    { return r.t.Name() }
func (r *recorder) Logf(format string, args ...any) { r.t.Logf(format, args...) }
func (r *recorder) Cleanup(f func())                { r.t.Cleanup(f) }
func (r *recorder) TempDir() string                 { return r.t.TempDir() }

func (r *recorder) Fatalf(format string, args ...any) {
	r.end(Failed, fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.end(Skipped, fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// end records the first outcome.
func (r *recorder) end(s Status, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == "" {
		r.status, r.msg = s, msg
	}
}

func (r *recorder) outcome() (Status, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == "" {
		return Passed, ""
	}
	return r.status, r.msg
}
