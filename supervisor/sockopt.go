package supervisor

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"
)

type optKey struct{ level, name int }

// The options P keeps itself: the filter lets programs set and read them natively (Spec), on
// every fd. For SO_KEEPALIVE the kernel's flag on the AF_UNIX end is exactly what getsockopt
// must report; the endpoint learns it where it matters for the connection — when it is
// spliced or accepted (connectDone, deliver) — and host sockets and replacement socketpairs get
// it copied. Set after the connection is spliced, it does not reach the endpoint, whose proxy
// probes idle connections anyway (netstack.Splice); TCP_KEEPIDLE/INTVL/CNT are trapped and do.
var nativeOpts = [...]optKey{{unix.SOL_SOCKET, unix.SO_KEEPALIVE}}

// readNativeOpts returns the native options set on P (p), as setsockopt values.
func readNativeOpts(p int) map[optKey][]byte {
	var out map[optKey][]byte
	for _, k := range nativeOpts {
		if v, err := rawGetsockoptInt(p, k.level, k.name); err == nil && v != 0 {
			if out == nil {
				out = make(map[optKey][]byte, len(nativeOpts))
			}
			out[k] = intOpt(v)
		}
	}
	return out
}

// withNativeOpts adds P's native options to opts (a copy the caller owns).
func withNativeOpts(opts map[optKey][]byte, p int) map[optKey][]byte {
	for k, v := range readNativeOpts(p) {
		if opts == nil {
			opts = make(map[optKey][]byte)
		}
		opts[k] = v
	}
	return opts
}

// copyNativeOpts sets P's native options (from) on another program end (to).
func copyNativeOpts(from, to int) {
	for k, v := range readNativeOpts(from) {
		rawSetsockopt(to, k.level, k.name, v)
	}
}

// isNativeOpt reports whether c is a getsockopt or setsockopt of an option P keeps itself. The
// filter lets those run natively; they come here only with high bits set in the level or name
// registers, which the kernel ignores.
func isNativeOpt(c *call) bool {
	if c.Nr != unix.SYS_GETSOCKOPT && c.Nr != unix.SYS_SETSOCKOPT {
		return false
	}
	k := optKey{int(int32(c.Args[1])), int(int32(c.Args[2]))}
	for _, n := range nativeOpts {
		if k == n {
			return true
		}
	}
	return false
}

// nativeOpt runs a get/setsockopt of a native option on P, as the kernel would have.
func (c *call) nativeOpt() error {
	level, name := int(int32(c.Args[1])), int(int32(c.Args[2]))
	if c.Nr == unix.SYS_SETSOCKOPT {
		val, err := c.optval()
		if err != nil {
			return err
		}
		return rawSetsockopt(c.end.fd, level, name, val)
	}
	return c.getsockopt(func(level, name int) ([]byte, error) {
		v, err := rawGetsockoptInt(c.end.fd, level, name)
		return intOpt(v), err
	})
}

// maxOptLen bounds the option values read from a program (Linux's largest socket options are
// well under it).
const maxOptLen = 4096

func intOpt(v int) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, uint32(int32(v)))
	return b
}

// optval reads setsockopt(2)'s value (the first maxOptLen bytes of it).
func (c *call) optval() ([]byte, error) {
	n := int(int32(c.Args[4]))
	if n < 0 {
		return nil, unix.EINVAL
	}
	val := make([]byte, min(n, maxOptLen))
	if err := c.read(c.Args[3], val); err != nil {
		return nil, err
	}
	return val, nil
}

// getsockopt answers getsockopt(2) with the value option gives for its level and name:
// the value, truncated to the program's length, and the length written back.
func (c *call) getsockopt(option func(level, name int) ([]byte, error)) error {
	level, name := int(int32(c.Args[1])), int(int32(c.Args[2]))
	n, err := c.readUint32(c.Args[4])
	if err != nil {
		return err
	}
	if int32(n) < 0 {
		return unix.EINVAL
	}
	val, err := option(level, name)
	if err != nil {
		return err
	}
	val = val[:min(int(n), len(val))]
	return c.writeWithLen(c.Args[3], val, c.Args[4], uint32(len(val)))
}

// soError answers SO_ERROR (p is a copy of P): a failed connect's error, or once the spliced
// connection has ended, what broke it — once. When the proxy left ECONNRESET pending on P
// (Ending's programReset), a read or SO_ERROR takes the error, whichever comes first, as on
// Linux: P's own pending error tells, and taking it here makes the program's next read see end
// of file. In stConnected with programReset the splice has ended and is about to report it.
func (sk *socket) soError(p *progEnd) unix.Errno {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if e := sk.soErr; e != 0 {
		sk.soErr = 0
		return e
	}
	if sk.errTaken || (sk.state != stEnded && sk.state != stConnected) {
		return 0
	}
	err, reset := sk.ep.Ending()
	if sk.state == stConnected && !reset {
		return 0
	}
	sk.errTaken = true
	if reset {
		if pending, gerr := rawGetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_ERROR); gerr == nil && pending == 0 {
			return 0 // a read took it
		}
	}
	var e unix.Errno
	errors.As(err, &e)
	return e
}

// progEndOption answers getsockopt(2) for an option of onProgEnd's from P, which holds what
// the program set, or the kernel's default (zero timeouts): the stack models none of them
// (gVisor's low-water mark reads 1 whatever was set).
func (c *call) progEndOption(p *progEnd) error {
	return c.getsockopt(func(level, name int) ([]byte, error) {
		var b [16]byte // a struct timeval, the largest of them
		n, err := rawGetsockopt(p.fd, level, name, b[:])
		return b[:n], err
	})
}

// onProgEnd reports an option that governs reads and writes on the program's end (timeouts,
// the receive low-water mark): it is set on P too, where they happen.
func onProgEnd(k optKey) bool {
	if k.level != unix.SOL_SOCKET {
		return false
	}
	switch k.name {
	case unix.SO_RCVTIMEO, unix.SO_RCVTIMEO_NEW, unix.SO_SNDTIMEO, unix.SO_SNDTIMEO_NEW, unix.SO_RCVLOWAT:
		return true
	}
	return false
}

// fixedOption answers the SOL_SOCKET options whose value Linux fixes for INET sockets and
// that the stack does not model: SO_PEERCRED (no peer process: pid 0, uid and gid -1),
// SO_SNDLOWAT (always 1), and SO_ZEROCOPY (0: see fixedSetting).
func fixedOption(level, name int) ([]byte, bool) {
	if level != unix.SOL_SOCKET {
		return nil, false
	}
	switch name {
	case unix.SO_PEERCRED:
		return binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(intOpt(0), ^uint32(0)), ^uint32(0)), true
	case unix.SO_SNDLOWAT:
		return intOpt(1), true
	case unix.SO_ZEROCOPY:
		return intOpt(0), true
	}
	return nil, false
}

// fixedSetting is the error of setting an option of fixedOption's: ENOPROTOOPT, as on Linux,
// but EOPNOTSUPP for SO_ZEROCOPY, as on sockets without zero-copy sends. The program's end
// is an AF_UNIX socket: it would take MSG_ZEROCOPY sends and never report their completion,
// and a program waiting for completions would hang; refused, programs send as usual.
func fixedSetting(level, name int) error {
	if _, fixed := fixedOption(level, name); !fixed {
		return nil
	}
	if name == unix.SO_ZEROCOPY {
		return unix.EOPNOTSUPP
	}
	return unix.ENOPROTOOPT
}

// checkDevice refuses SO_BINDTODEVICE with a name that is none of the interfaces programs see
// (ENODEV, as Linux); an empty name unbinds.
func (s *Supervisor) checkDevice(level, name int, val []byte) error {
	if level != unix.SOL_SOCKET || name != unix.SO_BINDTODEVICE {
		return nil
	}
	dev := cString(val)
	if dev == "" {
		return nil
	}
	for _, ifc := range s.interfaces() {
		if ifc.Name == dev {
			return nil
		}
	}
	return unix.ENODEV
}

// foreignStreamOption reports an option Linux refuses with ENOPROTOOPT on a TCP socket: one of
// another protocol's level (UDP's, or IPv6's on an IPv4 socket) or of no level at all.
func foreignStreamOption(level int, v6 bool) bool {
	switch level {
	case unix.SOL_SOCKET, unix.IPPROTO_IP, unix.IPPROTO_TCP:
		return false
	case unix.IPPROTO_IPV6:
		return !v6
	}
	return true
}

// option answers getsockopt(2) on a stream socket (SO_ERROR aside: soError): what identifies
// it, else the endpoint's value, or one remembered.
func (sk *socket) option(level, name int) ([]byte, error) {
	if foreignStreamOption(level, sk.v6) {
		return nil, unix.ENOPROTOOPT
	}
	if v, ok := fixedOption(level, name); ok {
		return v, nil
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if level == unix.SOL_SOCKET {
		switch name {
		case unix.SO_ACCEPTCONN:
			if sk.state == stListening {
				return intOpt(1), nil
			}
			return intOpt(0), nil
		case unix.SO_TYPE:
			return intOpt(unix.SOCK_STREAM), nil
		case unix.SO_PROTOCOL:
			return intOpt(unix.IPPROTO_TCP), nil
		case unix.SO_DOMAIN:
			if sk.v6 {
				return intOpt(unix.AF_INET6), nil
			}
			return intOpt(unix.AF_INET), nil
		}
	}
	if sk.state == stClosed {
		return nil, unix.EBADF
	}
	if err := sk.ensureEndpoint(); err != nil {
		return nil, err
	}
	val, err := sk.ep.GetSockOpt(level, name)
	if err == unix.ENOPROTOOPT {
		if v, ok := sk.opts[optKey{level, name}]; ok {
			return v, nil
		}
		if v, ok := unsetDefault(optKey{level, name}, sk.v6); ok {
			return intOpt(v), nil
		}
	}
	return val, err
}

// setsockopt emulates setsockopt(2): the stack applies what it knows; the rest of the TCP,
// IP, IPv6 and socket options is remembered and reported back by getsockopt, never refused
// (Linux has options gVisor lacks, and programs set options freely). Options that govern the
// data path on the program's end (timeouts, low-water marks) are also set on P, where reads
// and writes happen.
func (sk *socket) setsockopt(c *call, p *progEnd) error {
	level, name := int(int32(c.Args[1])), int(int32(c.Args[2]))
	if err := fixedSetting(level, name); err != nil {
		return err
	}
	if foreignStreamOption(level, sk.v6) {
		return unix.ENOPROTOOPT
	}
	val, err := c.optval()
	if err != nil {
		return err
	}
	if err := sk.s.checkDevice(level, name, val); err != nil {
		return err
	}
	if onProgEnd(optKey{level, name}) {
		if err := rawSetsockopt(p.fd, level, name, val); err != nil {
			return err
		}
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.state == stClosed {
		return unix.EBADF
	}
	if err := sk.ensureEndpoint(); err != nil {
		return err
	}
	err = sk.ep.SetSockOpt(level, name, val)
	if err != nil && err != unix.ENOPROTOOPT {
		return err
	}
	if sk.opts == nil {
		sk.opts = make(map[optKey][]byte)
	}
	sk.opts[optKey{level, name}] = val
	return nil
}

// shutdown emulates shutdown(2). On a connected socket the kernel shuts P down itself (the
// splice sees end of file and sends FIN); a listener stops listening.
func (sk *socket) shutdown(c *call, p *progEnd) error {
	how := int(int32(c.Args[1]))
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return unix.EINVAL
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	switch sk.state {
	case stConnected, stEnded:
		return errContinue
	case stListening:
		if how != unix.SHUT_WR {
			sk.stopListening(p)
		}
		return nil
	}
	return unix.ENOTCONN
}
