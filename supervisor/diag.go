package supervisor

import (
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"
)

// unixDiag asks the kernel (NETLINK_SOCK_DIAG) which AF_UNIX sockets still exist, i.e. are
// still held by some process. One netlink socket serves every question.
//
// Looking up one socket by inode walks the kernel's whole table of AF_UNIX sockets (unix_diag
// has no index by inode), so several sockets are checked with one dump instead: it costs the
// same walk once and lists the inodes of every socket of the network namespace.
type unixDiag struct {
	mu  sync.Mutex
	fd  int // -1 until first use
	seq uint32
	buf []byte
}

// diag is the supervisor process's: the programs' socketpairs live in its network namespace.
var diag = &unixDiag{fd: -1}

// unixSocketExists reports whether the AF_UNIX socket with inode ino still exists. Where the
// kernel cannot answer (no unix_diag), it says false: the socket is then treated as closed
// when its connection ends, which is right unless the program keeps a finished socket open.
func unixSocketExists(ino uint64) bool {
	if !diagWorks() {
		return false
	}
	found, _ := diag.exists(ino)
	return found
}

// unixSocketsExisting returns the inodes among inos whose sockets still exist (none where the
// kernel cannot answer, as unixSocketExists).
func unixSocketsExisting(inos map[uint64]bool) map[uint64]bool {
	out := make(map[uint64]bool)
	if !diagWorks() {
		return out
	}
	if len(inos) <= diagDumpMin {
		for ino := range inos {
			if found, _ := diag.exists(ino); found {
				out[ino] = true
			}
		}
		return out
	}
	if err := diag.dump(func(ino uint64) {
		if inos[ino] {
			out[ino] = true
		}
	}); err != nil {
		// Keep everything: a socket released while its program still holds it would lose
		// its emulation; one kept too long only costs memory until the next check.
		return inos
	}
	return out
}

// diagDumpMin is where one dump becomes cheaper than a lookup per socket.
const diagDumpMin = 2

var diagWorks = sync.OnceValue(func() bool {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	var st unix.Stat_t
	if unix.Fstat(fds[0], &st) != nil {
		return false
	}
	found, err := diag.exists(st.Ino)
	return err == nil && found
})

const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	sizeofNlMsghdr   = 16
	sizeofUnixDiag   = 24 // struct unix_diag_req
	sizeofUnixMsg    = 16 // struct unix_diag_msg
)

// exists looks one socket up by inode.
func (d *unixDiag) exists(ino uint64) (bool, error) {
	found := false
	err := d.query(unix.NLM_F_REQUEST, uint32(ino), func(uint64) { found = true })
	if err == unix.ENOENT {
		err = nil
	}
	return found, err
}

// dump calls fn with the inode of every AF_UNIX socket.
func (d *unixDiag) dump(fn func(ino uint64)) error {
	return d.query(unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 0, fn)
}

// query sends one unix_diag request and calls fn for each socket in the answer.
func (d *unixDiag) query(flags uint16, ino uint32, fn func(ino uint64)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		if err != nil {
			return err
		}
		d.fd = fd
		d.buf = make([]byte, 32<<10)
	}
	d.seq++
	var req [sizeofNlMsghdr + sizeofUnixDiag]byte
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], flags)
	ne.PutUint32(req[8:], d.seq)
	r := req[sizeofNlMsghdr:]
	r[0] = unix.AF_UNIX
	ne.PutUint32(r[4:], ^uint32(0)) // every state
	ne.PutUint32(r[8:], ino)
	ne.PutUint32(r[16:], ^uint32(0)) // no cookie check
	ne.PutUint32(r[20:], ^uint32(0))
	if err := unix.Sendto(d.fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		d.reset()
		return err
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			d.reset() // a lost answer would be taken for the next question's
			return err
		}
		if n < sizeofNlMsghdr {
			d.reset()
			return unix.EPROTO
		}
		for b := d.buf[:n]; len(b) >= sizeofNlMsghdr; {
			l := int(ne.Uint32(b[0:]))
			if l < sizeofNlMsghdr || l > len(b) {
				d.reset()
				return unix.EPROTO
			}
			m := b[:l]
			b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
			if ne.Uint32(m[8:]) != d.seq {
				continue // the rest of an earlier, abandoned answer
			}
			switch ne.Uint16(m[4:]) {
			case sockDiagByFamily:
				if len(m) >= sizeofNlMsghdr+sizeofUnixMsg {
					fn(uint64(ne.Uint32(m[sizeofNlMsghdr+4:])))
				}
				if flags&unix.NLM_F_DUMP == 0 {
					return nil
				}
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m) >= sizeofNlMsghdr+4 {
					if e := -int32(ne.Uint32(m[sizeofNlMsghdr:])); e > 0 {
						return unix.Errno(e)
					}
				}
				return unix.EPROTO
			}
		}
	}
}

// reset drops the netlink socket after a failure; the next query opens a new one.
func (d *unixDiag) reset() {
	unix.Close(d.fd)
	d.fd = -1
}
