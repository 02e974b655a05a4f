package notify

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls of a trapped call's handling are made raw (no entersyscall/exitsyscall): a
// goroutine that just readied another and then made a scheduler-visible call would let the
// runtime hand its processor to another thread (a futex wake and a context switch per call),
// and when the process had been idle the call wakes the runtime's monitor thread and sets it
// polling every 20 µs for the next millisecond. ADDFD is raw too, though it waits for the
// trapped thread to take the fd: that thread waits in the kernel and takes it as soon as it is
// woken, microseconds; one scheduler-visible ADDFD per connection kept each member's monitor
// waking ~2 times per connection when connections came one at a time.

func rawIoctl(fd int, req uint, arg unsafe.Pointer) (uintptr, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	return r, e
}

func rawPidfdGetfd(pidfd, fd int) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_PIDFD_GETFD, uintptr(pidfd), uintptr(fd), 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func rawPollIn(fd int) (int16, error) {
	p := unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	_, _, e := unix.RawSyscall(unix.SYS_POLL, uintptr(unsafe.Pointer(&p)), 1, 0)
	if e != 0 {
		return 0, e
	}
	return p.Revents, nil
}

// processVM copies between local and one or more remote ranges of thread tid (process_vm_readv
// or process_vm_writev); it returns the bytes copied.
func processVM(write bool, tid uint32, local []unix.Iovec, remote []unix.RemoteIovec) (int, error) {
	nr := uintptr(unix.SYS_PROCESS_VM_READV)
	if write {
		nr = unix.SYS_PROCESS_VM_WRITEV
	}
	r, _, e := unix.RawSyscall6(nr, uintptr(tid), uintptr(unsafe.Pointer(&local[0])), uintptr(len(local)),
		uintptr(unsafe.Pointer(&remote[0])), uintptr(len(remote)), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
