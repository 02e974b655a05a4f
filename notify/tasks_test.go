package notify

import (
	"maps"
	"os/exec"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// startSleeper starts a process that lives until killed.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "600")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

// TestTasksForgetsExitedThreads: a program that runs many short-lived processes (a shell, a
// prefork server) must not leave ztnc-run holding a pidfd for each, while the pidfds of those
// still alive stay cached.
func TestTasksForgetsExitedThreads(t *testing.T) {
	tasks := NewTasks()
	defer tasks.Close()
	var alive []*exec.Cmd
	for range 40 {
		alive = append(alive, startSleeper(t))
	}

	for _, c := range alive {
		fd, err := tasks.GetFD(uint32(c.Process.Pid), 0)
		if err != nil {
			t.Fatalf("GetFD of %d: %v", c.Process.Pid, err)
		}
		unix.Close(fd)
	}
	const shortLived = 300
	for range shortLived {
		c := startSleeper(t)
		fd, err := tasks.GetFD(uint32(c.Process.Pid), 0)
		if err != nil {
			t.Fatalf("GetFD of %d: %v", c.Process.Pid, err)
		}
		unix.Close(fd)
		c.Process.Kill()
		c.Wait()
	}

	tasks.mu.Lock()
	cached := len(tasks.pidfds)
	for _, c := range alive {
		if _, ok := tasks.pidfds[uint32(c.Process.Pid)]; !ok {
			t.Errorf("the pidfd of living process %d was dropped", c.Process.Pid)
		}
	}
	tasks.mu.Unlock()
	// Between sweeps the cache may grow to twice what the last sweep left (at least
	// minSweepAt); nothing beyond that may be left of the exited processes.
	if limit := max(minSweepAt, 2*len(alive)); cached > limit {
		t.Errorf("%d pidfds cached for %d living processes after %d exited; want at most %d", cached, len(alive), shortLived, limit)
	}
}

// TestTasksSweep: after a burst of processes that all exited, Sweep closes every pidfd.
func TestTasksSweep(t *testing.T) {
	tasks := NewTasks()
	defer tasks.Close()
	var burst []*exec.Cmd
	for range 100 {
		c := startSleeper(t)
		fd, err := tasks.GetFD(uint32(c.Process.Pid), 0)
		if err != nil {
			t.Fatalf("GetFD of %d: %v", c.Process.Pid, err)
		}
		unix.Close(fd)
		burst = append(burst, c)
	}
	for _, c := range burst {
		c.Process.Kill()
		c.Wait()
	}
	tasks.mu.Lock()
	cached := slices.Collect(maps.Values(tasks.pidfds))
	tasks.mu.Unlock()
	tasks.Sweep()
	tasks.mu.Lock()
	defer tasks.mu.Unlock()
	if n := len(tasks.pidfds); n != 0 {
		t.Errorf("%d pidfds cached after every process exited and Sweep", n)
	}
	for _, fd := range cached {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("pidfd %d still open after Sweep", fd)
		}
	}
}
