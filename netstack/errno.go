package netstack

import (
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// errno maps a gVisor error to the errno Linux returns in the same situation. It never panics:
// an error type gVisor adds later maps to EINVAL.
func errno(err tcpip.Error) syscall.Errno {
	switch err.(type) {
	case nil:
		return 0
	case *tcpip.ErrConnectionRefused:
		return syscall.ECONNREFUSED
	case *tcpip.ErrConnectionReset:
		return syscall.ECONNRESET
	case *tcpip.ErrConnectionAborted:
		return syscall.ECONNABORTED
	case *tcpip.ErrTimeout:
		return syscall.ETIMEDOUT
	case *tcpip.ErrHostUnreachable:
		return syscall.EHOSTUNREACH
	case *tcpip.ErrNetworkUnreachable:
		return syscall.ENETUNREACH
	case *tcpip.ErrHostDown:
		return syscall.EHOSTDOWN
	case *tcpip.ErrNoNet:
		return syscall.ENONET
	case *tcpip.ErrNotConnected:
		return syscall.ENOTCONN
	case *tcpip.ErrAlreadyConnected:
		return syscall.EISCONN
	case *tcpip.ErrAlreadyConnecting:
		return syscall.EALREADY
	case *tcpip.ErrConnectStarted:
		return syscall.EINPROGRESS
	case *tcpip.ErrWouldBlock:
		return syscall.EAGAIN
	case *tcpip.ErrClosedForSend, *tcpip.ErrAborted:
		return syscall.EPIPE
	case *tcpip.ErrPortInUse:
		return syscall.EADDRINUSE
	case *tcpip.ErrBadLocalAddress:
		return syscall.EADDRNOTAVAIL
	case *tcpip.ErrNoPortAvailable:
		// Linux connect(2) reports an exhausted ephemeral range as EADDRNOTAVAIL (gVisor's
		// sentry says EAGAIN, which programs do not expect from connect).
		return syscall.EADDRNOTAVAIL
	case *tcpip.ErrDestinationRequired:
		return syscall.EDESTADDRREQ
	case *tcpip.ErrMessageTooLong:
		return syscall.EMSGSIZE
	case *tcpip.ErrNoBufferSpace:
		return syscall.ENOBUFS
	case *tcpip.ErrNotSupported:
		return syscall.EOPNOTSUPP
	case *tcpip.ErrUnknownProtocolOption:
		return syscall.ENOPROTOOPT
	case *tcpip.ErrAddressFamilyNotSupported:
		return syscall.EAFNOSUPPORT
	case *tcpip.ErrBroadcastDisabled:
		return syscall.EACCES
	case *tcpip.ErrNotPermitted:
		return syscall.EPERM
	case *tcpip.ErrBadBuffer, *tcpip.ErrBadAddress:
		return syscall.EFAULT
	case *tcpip.ErrDuplicateAddress, *tcpip.ErrDuplicateNICID:
		return syscall.EEXIST
	case *tcpip.ErrUnknownNICID, *tcpip.ErrUnknownDevice, *tcpip.ErrInvalidNICID:
		return syscall.ENODEV
	case *tcpip.ErrNoSuchFile:
		return syscall.ENOENT
	case *tcpip.ErrQueueSizeNotSupported:
		return syscall.ENOTTY
	case *tcpip.ErrEndpointBusy:
		return syscall.EBUSY
	case *tcpip.ErrClosedForReceive:
		// End of stream is not an error in Linux; callers test for it before mapping.
		return 0
	default:
		// ErrAlreadyBound, ErrInvalidEndpointState, ErrInvalidOptionValue, ErrUnknownProtocol,
		// ErrMalformedHeader, ErrInvalidPortRange, ErrMissingRequiredFields, ... are EINVAL.
		return syscall.EINVAL
	}
}

// asError turns a gVisor error into a Go error holding the Linux errno (nil for nil).
func asError(err tcpip.Error) error {
	if err == nil {
		return nil
	}
	if e := errno(err); e != 0 {
		return e
	}
	return nil
}
