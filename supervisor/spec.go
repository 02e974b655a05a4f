package supervisor

import (
	"slices"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/notify"
)

// Spec is the filter the supervised programs run under. It traps only what must be trapped:
//
//   - socket() for AF_INET/AF_INET6 stream, datagram and raw sockets, and for rtnetlink
//     sockets (the interfaces programs see); AF_UNIX, other netlink families and the rest
//     cost nothing;
//   - the calls that take a socket fd and change or report its state (connect, bind, listen,
//     accept, names, options, shutdown), whatever the fd: a filter sees only registers, so calls
//     on fds that are not ours are sent back to the kernel (CONTINUE). SO_KEEPALIVE is set and
//     read natively, on P (see nativeOpts): Go sets it on every connection;
//   - sendto and recvfrom only when their address argument is not NULL, so send/recv on stream
//     sockets (and connected datagram sockets) stay untrapped;
//   - sendmsg, recvmsg, sendmmsg, recvmmsg and ioctl(FIONREAD) only on fds in the datagram
//     range (see fdRange), where they need addresses, control messages or datagram lengths;
//     and there the interface ioctls (SIOCGIFCONF…, see ifIoctl; the name and index ones on
//     every fd); sendmsg and sendmmsg also with MSG_FASTOPEN, a connect in disguise (see
//     streamSend).
//
// read, write, readv, writev, send, recv, splice and sendfile are never trapped: on emulated
// sockets they run on the AF_UNIX socketpair end in the kernel. io_uring is refused so that
// programs fall back to plain system calls the filter can see.
func Spec() notify.Spec { return Policy{}.Spec() }

// Spec is the filter for programs under policy p. Isolation adds two things: sendmsg and
// sendmmsg are trapped on every fd (a host datagram socket's destination lies in memory, see
// isolatedCall), and packet sockets, which would reach the host's links directly, are refused
// (EPERM, as without CAP_NET_RAW).
func (p Policy) Spec() notify.Spec {
	var trap []notify.Rule
	for _, family := range []uint64{unix.AF_INET, unix.AF_INET6} {
		for _, typ := range []uint64{unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_RAW} {
			trap = append(trap, notify.Rule{Syscall: "socket", Args: []notify.Arg{
				{Index: 0, Mask: 0xffffffff, Value: family},
				{Index: 1, Mask: sockTypeMask, Value: typ},
			}})
		}
	}
	for _, name := range []string{
		"connect", "bind", "listen", "accept", "accept4", "getsockname", "getpeername", "shutdown",
	} {
		trap = append(trap, notify.Rule{Syscall: name})
	}
	// Options are trapped but for the ones P keeps itself (nativeOpts): any level but
	// SOL_SOCKET, or any SOL_SOCKET option but those. The comparisons are on all 64 bits,
	// so a program that sets high bits the kernel ignores is trapped, never let through.
	for _, name := range []string{"getsockopt", "setsockopt"} {
		trap = append(trap, notify.Rule{Syscall: name, Args: []notify.Arg{{Index: 1, Value: unix.SOL_SOCKET, NotEqual: true}}})
		trap = append(trap, notify.Rule{Syscall: name, Args: []notify.Arg{{Index: 2, Value: unix.SO_KEEPALIVE, NotEqual: true}}})
	}
	for _, name := range []string{"sendto", "recvfrom"} {
		trap = append(trap, notify.Rule{Syscall: name, Args: []notify.Arg{{Index: 4, Value: 0, NotEqual: true}}})
	}
	r := datagramFDs()
	inRange := notify.Arg{Index: 0, Mask: r.mask(), Value: r.value()}
	for _, name := range []string{"sendmsg", "recvmsg", "sendmmsg", "recvmmsg"} {
		if p.Isolate && (name == "sendmsg" || name == "sendmmsg") {
			trap = append(trap, notify.Rule{Syscall: name})
			continue
		}
		trap = append(trap, notify.Rule{Syscall: name, Args: []notify.Arg{inRange}})
	}
	// And a TCP Fast Open connect, whatever the fd (see streamSend).
	trap = append(trap,
		notify.Rule{Syscall: "sendmsg", Args: []notify.Arg{{Index: 2, Mask: unix.MSG_FASTOPEN, Value: unix.MSG_FASTOPEN}}},
		notify.Rule{Syscall: "sendmmsg", Args: []notify.Arg{{Index: 3, Mask: unix.MSG_FASTOPEN, Value: unix.MSG_FASTOPEN}}})
	// rtnetlink sockets, for the interfaces programs see (see netlink.go).
	trap = append(trap, notify.Rule{Syscall: "socket", Args: []notify.Arg{
		{Index: 0, Mask: 0xffffffff, Value: unix.AF_NETLINK},
		{Index: 2, Mask: 0xffffffff, Value: unix.NETLINK_ROUTE},
	}})
	for _, req := range append([]uint64{unix.SIOCINQ}, ifIoctls...) {
		if slices.Contains(nameIndexIoctls, req) {
			continue // on every fd, below
		}
		trap = append(trap, notify.Rule{Syscall: "ioctl", Args: []notify.Arg{inRange, {Index: 1, Mask: 0xffffffff, Value: req}}})
	}
	for _, req := range nameIndexIoctls {
		trap = append(trap, notify.Rule{Syscall: "ioctl", Args: []notify.Arg{{Index: 1, Mask: 0xffffffff, Value: req}}})
	}
	var deny []notify.Rule
	for _, name := range []string{"io_uring_setup", "io_uring_enter", "io_uring_register"} {
		deny = append(deny, notify.Rule{Syscall: name, Errno: unix.ENOSYS})
	}
	if p.Isolate {
		deny = append(deny, notify.Rule{Syscall: "socket", Errno: unix.EPERM, Args: []notify.Arg{
			{Index: 0, Mask: 0xffffffff, Value: unix.AF_PACKET},
		}})
	}
	return notify.Spec{Trap: trap, Deny: deny}
}

// sockTypeMask selects the type from socket()'s second argument (SOCK_NONBLOCK and SOCK_CLOEXEC
// share it).
const sockTypeMask = 0xf
