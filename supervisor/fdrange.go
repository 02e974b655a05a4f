package supervisor

import (
	"math/bits"
	"sync"

	"golang.org/x/sys/unix"
)

// Datagram sockets live in a range of fd numbers that the supervisor chooses (ADDFD with
// SETFD), so that the filter can trap the calls that carry addresses in memory — sendmsg,
// recvmsg, sendmmsg, recvmmsg, ioctl(FIONREAD) — for those fds only: a register test on the fd
// argument. Stream sockets, files, pipes and AF_UNIX sockets get the lowest free numbers, as
// the kernel gives them, which are below the range unless a program holds hundreds of fds;
// their data calls are never trapped. An fd of another kind that does land in the range costs
// a trapped call that the kernel then runs (CONTINUE), nothing more.
//
// The range is aligned on its size, so one masked comparison tests it, and lies below 1024
// so that programs using select() (FD_SETSIZE) can still watch datagram sockets.
type fdRange struct {
	base, size int
}

// datagramFDs is the range for this process and its programs: with the usual soft
// RLIMIT_NOFILE of 1024 or more it is 512–767; a lower limit moves it down (limit/2 to
// limit·3/4, the limit rounded down to a power of two) so that the numbers can be used.
var datagramFDs = sync.OnceValue(func() fdRange {
	limit := 1024
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < 1024 {
		limit = int(rl.Cur)
	}
	if limit < 16 {
		limit = 16
	}
	limit = 1 << (bits.Len(uint(limit)) - 1)
	return fdRange{base: limit / 2, size: limit / 4}
})

// mask and value of the filter's test (fd & mask) == value, on the low 32 bits (the kernel
// reads fd arguments as int).
func (r fdRange) mask() uint64  { return uint64(0xffffffff &^ (r.size - 1)) }
func (r fdRange) value() uint64 { return uint64(r.base) }
