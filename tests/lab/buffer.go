package lab

import (
	"bytes"
	"errors"
	"os/exec"
	"sync"
	"syscall"
)

// Buffer collects a process's output while the test reads it: a bytes.Buffer safe for one
// writer and readers in other goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ExitCode is the exit status a shell would report for the error of exec.Cmd's Wait or Run:
// 0, the process's code, 128+N when signal N killed it, or -1 when it did not run.
func ExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
