package supervisor

import (
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"
)

// unixSocketExists asks the kernel (NETLINK_SOCK_DIAG, AF_UNIX by inode) whether the AF_UNIX
// socket with inode ino still exists, i.e. whether some process still holds it. Where the
// kernel cannot answer (no unix_diag), it says false: the socket is then treated as closed
// when its connection ends, which is right unless the program keeps a finished socket open.
func unixSocketExists(ino uint64) bool {
	if !diagWorks() {
		return false
	}
	found, _ := queryUnixDiag(ino)
	return found
}

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
	found, err := queryUnixDiag(st.Ino)
	return err == nil && found
})

const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	sizeofNlMsghdr   = 16
	sizeofUnixDiag   = 24 // struct unix_diag_req
)

func queryUnixDiag(ino uint64) (bool, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	req := make([]byte, sizeofNlMsghdr+sizeofUnixDiag)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // sequence
	d := req[sizeofNlMsghdr:]
	d[0] = unix.AF_UNIX
	ne.PutUint32(d[4:], ^uint32(0)) // every state
	ne.PutUint32(d[8:], uint32(ino))
	ne.PutUint32(d[16:], ^uint32(0)) // no cookie check
	ne.PutUint32(d[20:], ^uint32(0))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, err
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		if n < sizeofNlMsghdr {
			return false, unix.EPROTO
		}
		switch ne.Uint16(buf[4:]) {
		case sockDiagByFamily:
			return true, nil
		case unix.NLMSG_ERROR:
			if n >= sizeofNlMsghdr+4 && int32(ne.Uint32(buf[sizeofNlMsghdr:])) == -int32(unix.ENOENT) {
				return false, nil
			}
			return false, unix.EPROTO
		case unix.NLMSG_DONE:
			return false, nil
		}
	}
}
