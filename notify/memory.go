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
	n, err := processVM(false, tid, local, remote)
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
	n, err := processVM(true, tid, local, remote)
	if err != nil {
		return err
	}
	if n != len(b) {
		return unix.EFAULT
	}
	return nil
}

// Segment is a range of a traced thread's memory.
type Segment struct {
	Addr uint64
	Len  int
}

// ReadMemoryv fills b from the segments of thread tid's memory, in order (len(b) is at most
// their total), in one system call where the kernel allows (at most 1024 segments per call).
// A short or failed copy is EFAULT.
func ReadMemoryv(tid uint32, segs []Segment, b []byte) error {
	return memoryv(tid, segs, b, false)
}

// WriteMemoryv copies b to the segments of thread tid's memory, in order, up to len(b).
func WriteMemoryv(tid uint32, segs []Segment, b []byte) error {
	return memoryv(tid, segs, b, true)
}

const maxIovecs = 1024 // UIO_MAXIOV

func memoryv(tid uint32, segs []Segment, b []byte, write bool) error {
	for len(b) > 0 && len(segs) > 0 {
		var remote []unix.RemoteIovec
		want := 0
		for len(segs) > 0 && len(remote) < maxIovecs && want < len(b) {
			l := min(segs[0].Len, len(b)-want)
			if l > 0 {
				remote = append(remote, unix.RemoteIovec{Base: uintptr(segs[0].Addr), Len: l})
				want += l
			}
			segs = segs[1:]
		}
		if want == 0 {
			continue
		}
		local := []unix.Iovec{{Base: &b[0], Len: uint64(want)}}
		var n int
		var err error
		if write {
			n, err = processVM(true, tid, local, remote)
		} else {
			n, err = processVM(false, tid, local, remote)
		}
		if err != nil {
			return err
		}
		if n != want {
			return unix.EFAULT
		}
		b = b[want:]
	}
	return nil
}
