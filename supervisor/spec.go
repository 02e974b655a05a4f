package supervisor

import (
	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/notify"
)

// Spec is the filter the supervised programs run under.
//
// socket() is trapped only for AF_INET/AF_INET6 stream sockets, so AF_UNIX, netlink and (until
// UDP is emulated) datagram sockets cost nothing. The calls that take a socket fd are trapped
// whatever the fd is: a filter sees only registers, so calls on fds that are not ours are sent
// back to the kernel (CONTINUE). Data calls (read, write, send*, recv*, splice, sendfile) are not
// trapped at all: on an emulated socket they run on the AF_UNIX socketpair end in the kernel.
// io_uring is refused so that programs fall back to plain system calls the filter can see.
func Spec() notify.Spec {
	var trap []notify.Rule
	for _, family := range []uint64{unix.AF_INET, unix.AF_INET6} {
		trap = append(trap, notify.Rule{Syscall: "socket", Args: []notify.Arg{
			{Index: 0, Mask: 0xffffffff, Value: family},
			{Index: 1, Mask: sockTypeMask, Value: unix.SOCK_STREAM},
		}})
	}
	for _, name := range []string{
		"connect", "bind", "listen", "accept", "accept4",
		"getsockname", "getpeername", "getsockopt", "setsockopt", "shutdown",
	} {
		trap = append(trap, notify.Rule{Syscall: name})
	}
	var deny []notify.Rule
	for _, name := range []string{"io_uring_setup", "io_uring_enter", "io_uring_register"} {
		deny = append(deny, notify.Rule{Syscall: name, Errno: unix.ENOSYS})
	}
	return notify.Spec{Trap: trap, Deny: deny}
}

// sockTypeMask selects the type from socket()'s second argument (SOCK_NONBLOCK and SOCK_CLOEXEC
// share it).
const sockTypeMask = 0xf
