package supervisor

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls a connection's set-up makes on the supervisor's own sockets — socketpairs,
// their options, junk and tokens through non-blocking ends, fstat, fcntl, epoll_ctl — never
// wait, so they are made raw (no entersyscall/exitsyscall), like notify's (see notify/rawsys.go):
// a scheduler-visible call right after readying a goroutine can hand the processor to another
// thread. Calls that can wait (ADDFD) stay scheduler-visible.

func rawErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// rawSocketpair makes an AF_UNIX socketpair of typ (with SOCK_* flags).
func rawSocketpair(typ int) (p, s int, err error) {
	var fds [2]int32
	_, _, e := unix.RawSyscall6(unix.SYS_SOCKETPAIR, unix.AF_UNIX, uintptr(typ), 0, uintptr(unsafe.Pointer(&fds)), 0, 0)
	if e != 0 {
		return -1, -1, e
	}
	return int(fds[0]), int(fds[1]), nil
}

func rawSetsockopt(fd, level, name int, val []byte) error {
	var p unsafe.Pointer
	if len(val) > 0 {
		p = unsafe.Pointer(&val[0])
	}
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), uintptr(p), uintptr(len(val)), 0)
	return rawErr(e)
}

func rawSetsockoptInt(fd, level, name, v int) error {
	v32 := int32(v)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), uintptr(unsafe.Pointer(&v32)), 4, 0)
	return rawErr(e)
}

// rawGetsockopt reads an option into b, returning its length.
func rawGetsockopt(fd, level, name int, b []byte) (int, error) {
	l := uint32(len(b))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&l)), 0)
	return int(l), rawErr(e)
}

func rawGetsockoptInt(fd, level, name int) (int, error) {
	var v int32
	l := uint32(4)
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&l)), 0)
	return int(v), rawErr(e)
}

func rawFcntl(fd, cmd, arg int) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	return int(r), rawErr(e)
}

// rawInode returns the inode of the socket fd refers to.
func rawInode(fd int) (uint64, error) {
	var st unix.Stat_t
	_, _, e := unix.RawSyscall(unix.SYS_FSTAT, uintptr(fd), uintptr(unsafe.Pointer(&st)), 0)
	return st.Ino, rawErr(e)
}

// rawSend sends b on a socket; flags must hold MSG_DONTWAIT unless the socket is non-blocking.
func rawSend(fd int, b []byte, flags int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(flags|unix.MSG_NOSIGNAL), 0, 0)
	return int(r), rawErr(e)
}

// rawRecv receives into b from a socket without waiting.
func rawRecv(fd int, b []byte) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), unix.MSG_DONTWAIT, 0, 0)
	return int(r), rawErr(e)
}

// rawClose closes a copy of a program's fd (never its last reference while the program holds
// it) or an end of the supervisor's socketpairs: closing an AF_UNIX socket never waits, not
// even the last reference (it has no linger).
func rawClose(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }
