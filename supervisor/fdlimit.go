package supervisor

import (
	"time"

	"golang.org/x/sys/unix"
)

// fdWarnEvery spaces the warnings that ztnc-run is out of file descriptors.
const fdWarnEvery = time.Minute

// socketpair makes the AF_UNIX socketpair behind an emulated socket (typ with SOCK_* flags).
// ztnc-run keeps one end of every emulated socket of every program it runs, so it can run
// out of file descriptors while each program is well within its own limit. The program's
// call then fails with EMFILE, which would blame the program; the warning names the cause.
//
// A stream pair's S takes out-of-band data inline: a program's send(MSG_OOB) leaves its last
// byte out of band in S, where the proxy's reads would skip it. Inline, the byte travels with
// the rest (TCP urgent data is not carried).
func (s *Supervisor) socketpair(typ int) (p, sfd int, err error) {
	p, sfd, err = rawSocketpair(typ)
	s.noteFDShortage(err)
	if err == nil && typ&sockTypeMask == unix.SOCK_STREAM {
		if err = rawSetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1); err != nil {
			unix.Close(p)
			unix.Close(sfd)
			return -1, -1, err
		}
	}
	return p, sfd, err
}

// noteFDShortage warns, at most every fdWarnEvery, when err says ztnc-run could not open a
// file descriptor for a program's socket.
func (s *Supervisor) noteFDShortage(err error) {
	if err != unix.EMFILE && err != unix.ENFILE {
		return
	}
	now := time.Now().UnixNano()
	last := s.fdWarned.Load()
	if now-last < int64(fdWarnEvery) || !s.fdWarned.CompareAndSwap(last, now) {
		return
	}
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	s.log.Warn("out of file descriptors: the programs' socket calls fail until sockets close",
		"err", unix.ErrnoName(err.(unix.Errno)), "limit", lim.Cur, "sockets", s.Sockets(),
		"hint", "ztnc-run holds a file descriptor per socket of the programs it runs; raise its limit (ulimit -n, a container's nofile)")
}
