package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
)

// T is the part of testing.TB the lab uses. *testing.T and *testing.B satisfy it; Standalone
// provides one for programs outside `go test`, such as benchmark runners.
type T interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// ErrSkipped is returned by Standalone when fn called Skipf.
var ErrSkipped = errors.New("skipped")

// Standalone runs fn with a T that logs to log, for programs outside `go test`. Like testing,
// Fatalf and Skipf end fn (runtime.Goexit) and the cleanups run in reverse order when fn
// returns, fails or panics; SIGINT and SIGTERM also run them before the program exits.
// The result is nil, the Fatalf message as an error, or an error wrapping ErrSkipped.
func Standalone(name string, log io.Writer, fn func(t T)) (err error) {
	s := &standalone{name: name, log: log}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	stop := make(chan struct{})
	go func() {
		select {
		case sig := <-sigc:
			s.Logf("%s: %v: cleaning up", name, sig)
			s.runCleanups()
			os.Exit(130)
		case <-stop:
		}
	}()
	defer func() {
		signal.Stop(sigc)
		close(stop)
	}()

	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.runCleanups()
		defer func() {
			if r := recover(); r != nil {
				s.fail(fmt.Errorf("panic: %v", r))
			}
		}()
		fn(s)
	}()
	<-done
	return s.err
}

type standalone struct {
	name string
	log  io.Writer

	mu       sync.Mutex
	err      error
	cleanups []func()
}

func (s *standalone) Helper()      {}
func (s *standalone) Name() string { return s.name }

func (s *standalone) Logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.log, format+"\n", args...)
}

func (s *standalone) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.Logf("%s: %v", s.name, err)
}

func (s *standalone) Fatalf(format string, args ...any) {
	s.fail(fmt.Errorf(format, args...))
	runtime.Goexit()
}

func (s *standalone) Skipf(format string, args ...any) {
	s.fail(fmt.Errorf("%w: %s", ErrSkipped, fmt.Sprintf(format, args...)))
	runtime.Goexit()
}

func (s *standalone) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *standalone) TempDir() string {
	dir, err := os.MkdirTemp("", "ztlab-")
	if err != nil {
		s.Fatalf("TempDir: %v", err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// runCleanups pops and runs cleanups one at a time, so that it is safe to call from the
// signal goroutine while fn's goroutine runs them too.
func (s *standalone) runCleanups() {
	for {
		s.mu.Lock()
		n := len(s.cleanups)
		if n == 0 {
			s.mu.Unlock()
			return
		}
		f := s.cleanups[n-1]
		s.cleanups = s.cleanups[:n-1]
		s.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.Logf("%s: cleanup panicked: %v", s.name, r)
				}
			}()
			f()
		}()
	}
}
