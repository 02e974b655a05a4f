package notify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Tasks takes copies of trapped threads' file descriptors (pidfd_getfd). It caches one pidfd per
// thread id; a cached pidfd whose thread has died fails and is replaced, so a reused id never
// reaches the wrong file table.
//
// The pidfds of threads that have exited are closed when the cache has doubled since it was
// last swept, and whenever the owner calls Sweep: a shell or a prefork server that runs
// thousands of short-lived processes would otherwise keep up to maxCachedPidfds dead ones
// open, file descriptors ztnc-run needs for sockets.
type Tasks struct {
	mu      sync.Mutex
	pidfds  map[uint32]int
	sweepAt int           // the cache size at which the next sweep runs
	polled  []unix.PollFd // sweep scratch: each cached pidfd, and its thread id in tids
	tids    []uint32
	thread  bool // PIDFD_THREAD works (Linux 6.9): a pidfd names the thread and its own fd table
}

const (
	// maxCachedPidfds bounds the cache; past it, even after a sweep, the cache is emptied.
	maxCachedPidfds = 1024
	// minSweepAt is the cache size below which dead entries are left alone.
	minSweepAt = 64
)

// NewTasks makes an empty cache.
func NewTasks() *Tasks {
	return &Tasks{pidfds: make(map[uint32]int), sweepAt: minSweepAt, thread: true}
}

// GetFD returns a copy (close-on-exec) of file descriptor fd of thread tid. The caller closes it.
// EBADF means the thread has no such fd.
func (t *Tasks) GetFD(tid uint32, fd int) (int, error) {
	if fd < 0 || fd > 1<<30 {
		return -1, unix.EBADF
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.pidfds[tid]; ok {
		c, err := rawPidfdGetfd(p, fd)
		if err == nil {
			return c, nil
		}
		// The cached pidfd may name a dead thread whose id was reused: retry with a fresh one.
		unix.Close(p)
		delete(t.pidfds, tid)
	}
	p, err := t.open(tid)
	if err != nil {
		return -1, err
	}
	c, err := rawPidfdGetfd(p, fd)
	if err != nil {
		unix.Close(p)
		return -1, err
	}
	if len(t.pidfds) >= t.sweepAt {
		t.sweepLocked()
	}
	t.pidfds[tid] = p
	return c, nil
}

func (t *Tasks) open(tid uint32) (int, error) {
	if t.thread {
		p, err := unix.PidfdOpen(int(tid), unix.PIDFD_THREAD)
		if err == nil {
			return p, nil
		}
		if err != unix.EINVAL {
			return -1, fmt.Errorf("pidfd_open %d: %w", tid, err)
		}
		t.thread = false // before Linux 6.9: name the thread group instead
	}
	tgid, err := threadGroup(tid)
	if err != nil {
		return -1, err
	}
	p, err := unix.PidfdOpen(tgid, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", tgid, err)
	}
	return p, nil
}

// Close releases every cached pidfd.
func (t *Tasks) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flushLocked()
}

// Sweep closes the pidfds of threads that have exited. GetFD sweeps as the cache grows; calling
// Sweep now and then also lets them go once the programs fall quiet after a burst.
func (t *Tasks) Sweep() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pidfds) > 0 {
		t.sweepLocked()
	}
}

// sweepLocked closes the pidfds of threads that have exited: a pidfd polls readable then (with
// PIDFD_THREAD when the thread exits, without it when its whole process has). The next sweep
// waits until the cache has doubled, so sweeping costs O(1) per cached entry.
func (t *Tasks) sweepLocked() {
	t.polled, t.tids = t.polled[:0], t.tids[:0]
	for tid, p := range t.pidfds {
		t.polled = append(t.polled, unix.PollFd{Fd: int32(p), Events: unix.POLLIN})
		t.tids = append(t.tids, tid)
	}
	if _, err := unix.Poll(t.polled, 0); err != nil {
		t.flushLocked() // cannot tell the living from the dead: start afresh
	} else {
		for i, pfd := range t.polled {
			if pfd.Revents != 0 {
				unix.Close(int(pfd.Fd))
				delete(t.pidfds, t.tids[i])
			}
		}
	}
	if len(t.pidfds) >= maxCachedPidfds {
		t.flushLocked()
	}
	t.sweepAt = max(minSweepAt, 2*len(t.pidfds))
}

func (t *Tasks) flushLocked() {
	for k, p := range t.pidfds {
		unix.Close(p)
		delete(t.pidfds, k)
	}
}

// threadGroup maps a thread id to its process id (Tgid in /proc/<tid>/status).
func threadGroup(tid uint32) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return -1, err
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if v, ok := bytes.CutPrefix(s.Bytes(), []byte("Tgid:")); ok {
			return strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	return -1, errors.New("no Tgid in /proc status")
}
