package notify

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install loads prog on the calling OS thread with a user-notification listener and returns the
// listener's fd (close-on-exec). The filter waits killably once a notification is received when
// the kernel supports it (Linux 5.19), so that a program's signals cannot abandon a call that the
// supervisor is already answering. Without CAP_SYS_ADMIN the kernel demands no_new_privs; it is set
// only in that case, so setuid programs keep working when ztnc runs as root.
//
// The calling goroutine must be locked to its thread, and the thread must make no trapped system
// call until the listener has been handed over.
// The result says whether the filter waits killably.
func Install(prog Program) (fd int, killable bool, err error) {
	if len(prog) == 0 {
		return -1, false, errors.New("seccomp: empty program")
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	nnp := false
	for {
		fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
		switch {
		case errno == 0:
			return int(fd), flags&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0, nil
		case errno == unix.EINVAL && flags&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0:
			flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		case errno == unix.EACCES && !nnp:
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				return -1, false, fmt.Errorf("seccomp: set no_new_privs: %w", err)
			}
			nnp = true
		case errno == unix.ENOSYS:
			return -1, false, errors.New("seccomp: kernel without seccomp filters (CONFIG_SECCOMP_FILTER)")
		case errno == unix.EBUSY:
			return -1, false, errors.New("seccomp: another supervisor already listens on this process's filters (nested ztnc-run or a runtime's agent); the kernel allows only one")
		case errno == unix.EINVAL:
			return -1, false, errors.New("seccomp: kernel lacks SECCOMP_FILTER_FLAG_NEW_LISTENER (user notification, Linux 5.0+; ztnc needs 5.9+)")
		default:
			return -1, false, fmt.Errorf("seccomp: install filter: %w", errno)
		}
	}
}
