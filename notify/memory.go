package notify

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

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

// ReadUint32 reads a native-endian 32-bit value (a socklen_t, an int).
func ReadUint32(tid uint32, addr uint64) (uint32, error) {
	var v uint32
	err := ReadMemory(tid, addr, unsafe.Slice((*byte)(unsafe.Pointer(&v)), 4))
	return v, err
}

// WriteUint32 writes a native-endian 32-bit value.
func WriteUint32(tid uint32, addr uint64, v uint32) error {
	return WriteMemory(tid, addr, unsafe.Slice((*byte)(unsafe.Pointer(&v)), 4))
}
