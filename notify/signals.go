package notify

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Signals reports whether one thread has a signal pending that it does not block: the signal
// a native blocking call would be interrupted by. With SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
// the kernel holds such signals off while the supervisor answers, so a supervisor that waits on
// a thread's behalf polls Pending and answers ERESTARTSYS when it turns true.
//
// It is polled every few milliseconds for as long as a call blocks (an idle server's accept,
// for hours), so it holds the thread's /proc/<tid>/status open and each check is one pread
// into a pooled buffer: 5.2 µs on the AMD VM of docs/benchmarks.md, where opening and closing
// the file each time took 10.5. The open file also keeps naming the thread it was opened for:
// once that thread is gone, reads fail with ESRCH, even if its tid has been reused.
type Signals struct{ fd int }

// OpenSignals opens thread tid's status file. Close it when the wait is over.
func OpenSignals(tid uint32) (*Signals, error) {
	var path [32]byte // "/proc/<tid>/status\x00"
	p := append(strconv.AppendUint(append(path[:0], "/proc/"...), uint64(tid), 10), "/status\x00"...)
	dirfd := unix.AT_FDCWD
	fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&p[0])),
		unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
	if e != 0 {
		return nil, e
	}
	return &Signals{fd: int(fd)}, nil
}

// Pending reads the status afresh (a read at offset 0 regenerates it) and reports whether an
// unblocked signal is pending.
func (s *Signals) Pending() (bool, error) {
	buf := statusBufs.Get().(*[statusBufSize]byte)
	defer statusBufs.Put(buf)
	n, err := pread0(s.fd, buf[:])
	if err != nil {
		return false, err
	}
	status := buf[:n]
	if n == len(buf) && !bytes.Contains(status, maskFields[2]) {
		// A very long line before the masks (thousands of supplementary groups).
		big := make([]byte, 1<<20)
		if n, err = pread0(s.fd, big); err != nil {
			return false, err
		}
		status = big[:n]
	}
	return unblockedPending(status)
}

// Close closes the status file.
func (s *Signals) Close() {
	if s.fd >= 0 {
		unix.RawSyscall(unix.SYS_CLOSE, uintptr(s.fd), 0, 0)
		s.fd = -1
	}
}

// maskFields start the status lines of the thread's pending signals, the process's, and the
// thread's blocked ones.
var maskFields = [3][]byte{[]byte("\nSigPnd:"), []byte("\nShdPnd:"), []byte("\nSigBlk:")}

// unblockedPending reads the masks of maskFields from a status file.
func unblockedPending(status []byte) (bool, error) {
	var masks [3]uint64
	for i, field := range maskFields {
		var err error
		if masks[i], err = hexField(status, field); err != nil {
			return false, err
		}
	}
	return (masks[0]|masks[1])&^masks[2] != 0, nil
}

// statusBufSize holds the part of /proc/<tid>/status up to the signal masks, which come well
// before the long CPU and memory lists at its end.
const statusBufSize = 4096

var statusBufs = sync.Pool{New: func() any { return new([statusBufSize]byte) }}

// pread0 reads up to len(buf) bytes from the start of fd, raw: it never waits.
func pread0(fd int, buf []byte) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

var errNoField = errors.New("signal mask missing from /proc status")

// hexField parses the hexadecimal value of the status line starting with field ("\nName:").
func hexField(status, field []byte) (uint64, error) {
	i := bytes.Index(status, field)
	if i < 0 {
		return 0, errNoField
	}
	var v uint64
	digits := 0
	for _, c := range status[i+len(field):] {
		switch {
		case c == ' ' || c == '\t':
			if digits > 0 {
				return v, nil
			}
			continue
		case c == '\n':
			if digits == 0 {
				return 0, errNoField
			}
			return v, nil
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, errNoField
		}
		if digits == 16 {
			return 0, errNoField
		}
		v = v<<4 | uint64(c)
		digits++
	}
	return 0, errNoField // the line was cut off by the buffer's end
}
