package netstack

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// System calls on the proxy's non-blocking AF_UNIX sockets, made without the Go runtime's
// syscall bookkeeping (entersyscall/exitsyscall). None of them can block, and the bookkeeping
// costs more than the call: under load a goroutine that readies another and then enters a
// system call lets the runtime's monitor hand its processor to a new thread (a futex wake,
// then a context switch); after an idle spell the call wakes the monitor and sets it polling
// every 20 µs for the next millisecond. Waiting for readiness stays with the network poller
// (RawConn.Read/Write); closing goes through os.File, in batches (closer.go).

func rawRead(fd uintptr, b []byte, flags int) (int, unix.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(flags), 0, 0)
	return int(n), e
}

func rawWrite(fd uintptr, b []byte) (int, unix.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_NOSIGNAL, 0, 0)
	return int(n), e
}

// rawPoll0 polls fd for events without waiting and returns the events that hold.
func rawPoll0(fd uintptr, events int16) int16 {
	p := unix.PollFd{Fd: int32(fd), Events: events}
	n, _, e := unix.RawSyscall(unix.SYS_POLL, uintptr(unsafe.Pointer(&p)), 1, 0)
	if e != 0 || n != 1 {
		return 0
	}
	return p.Revents
}

func rawShutdown(fd uintptr, how int) unix.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, fd, uintptr(how), 0)
	return e
}

func rawGetsockoptInt(fd uintptr, level, name int) (int, unix.Errno) {
	var v int32
	l := uint32(4)
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), uintptr(name), uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&l)), 0)
	return int(v), e
}

func rawSetsockoptInt(fd uintptr, level, name, v int) unix.Errno {
	v32 := int32(v)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, fd, uintptr(level), uintptr(name), uintptr(unsafe.Pointer(&v32)), 4, 0)
	return e
}
