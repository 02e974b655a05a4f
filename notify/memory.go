package notify

import "golang.org/x/sys/unix"

// ReadMemory copies len(b) bytes at addr in the address space of thread tid into b. A short or
// failed copy is EFAULT. The caller re-checks Valid before trusting what it read: the thread may
// have died and its id been reused.
func ReadMemory(tid uint32, addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMReadv(int(tid), local, remote, 0)
	if err != nil {
		return err
	}
	if n != len(b) {
		return unix.EFAULT
	}
	return nil
}

// WriteMemory copies b to addr in the address space of thread tid.
func WriteMemory(tid uint32, addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMWritev(int(tid), local, remote, 0)
	if err != nil {
		return err
	}
	if n != len(b) {
		return unix.EFAULT
	}
	return nil
}
