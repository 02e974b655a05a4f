package supervisor

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/notify"
)

// getsockname emulates getsockname(2): the stack's address, in the socket's family.
func (sk *socket) getsockname(c *call) error {
	sk.mu.Lock()
	var ap netip.AddrPort
	switch {
	case sk.state == stConnected || sk.state == stEnded:
		ap = sk.local
	case sk.ep != nil:
		ap = sk.ep.LocalAddr()
	}
	sk.mu.Unlock()
	return c.writeSockaddr(c.Args[1], c.Args[2], encodeSockaddr(ap, sk.v6))
}

// getpeername emulates getpeername(2).
func (sk *socket) getpeername(c *call) error {
	sk.mu.Lock()
	st, peer := sk.state, sk.peer
	sk.mu.Unlock()
	if st != stConnected {
		return unix.ENOTCONN
	}
	return c.writeSockaddr(c.Args[1], c.Args[2], encodeSockaddr(peer, sk.v6))
}

// readSockaddr reads the address argument of bind/connect.
func (c *call) readSockaddr(addr, size uint64) ([]byte, error) {
	n := int(int32(size))
	if n < 0 || n > maxSockaddrLen {
		return nil, unix.EINVAL
	}
	b := make([]byte, n)
	if err := c.read(addr, b); err != nil {
		return nil, err
	}
	return b, nil
}

// writeSockaddr fills a (struct sockaddr *, socklen_t *) result pair as the kernel does: the
// address truncated to the caller's length, the full length written back.
func (c *call) writeSockaddr(addr, lenp uint64, sa []byte) error {
	n, err := c.readUint32(lenp)
	if err != nil {
		return err
	}
	if int32(n) < 0 {
		return unix.EINVAL
	}
	return c.writeWithLen(addr, sa[:min(int(n), len(sa))], lenp, uint32(len(sa)))
}

// writeWithLen writes b at addr and then n at lenp (a value and its length, as getsockname and
// getsockopt return them) in one copy: the kernel stops at the first fault, so a bad addr leaves
// *lenp unwritten, as the system calls do.
func (c *call) writeWithLen(addr uint64, b []byte, lenp uint64, n uint32) error {
	var buf [maxSockaddrLen + 4]byte
	out := buf[:0]
	if len(b) > maxSockaddrLen {
		out = make([]byte, 0, len(b)+4)
	}
	out = binary.NativeEndian.AppendUint32(append(out, b...), n)
	segs := [2]notify.Segment{{Addr: addr, Len: len(b)}, {Addr: lenp, Len: 4}}
	if err := notify.WriteMemoryv(c.Pid, segs[:], out); err != nil {
		if !c.s.l.Valid(c.ID) {
			return errAnswered
		}
		return unix.EFAULT
	}
	return nil
}

// read copies the trapped thread's memory; any failure is EFAULT to the program, or ErrGone
// (errAnswered: nothing to answer) when the call has vanished meanwhile.
func (c *call) read(addr uint64, b []byte) error {
	if err := notify.ReadMemory(c.Pid, addr, b); err != nil {
		c.s.log.Debug("read memory", "pid", c.Pid, "addr", addr, "len", len(b), "err", err)
		if !c.s.l.Valid(c.ID) {
			return errAnswered
		}
		return unix.EFAULT
	}
	// The thread could have died and its id been reused before the read.
	if !c.s.l.Valid(c.ID) {
		return errAnswered
	}
	return nil
}

func (c *call) write(addr uint64, b []byte) error {
	if err := notify.WriteMemory(c.Pid, addr, b); err != nil {
		if !c.s.l.Valid(c.ID) {
			return errAnswered
		}
		return unix.EFAULT
	}
	return nil
}

func (c *call) readUint32(addr uint64) (uint32, error) {
	var b [4]byte
	if err := c.read(addr, b[:]); err != nil {
		return 0, err
	}
	return binary.NativeEndian.Uint32(b[:]), nil
}

func (c *call) writeUint32(addr uint64, v uint32) error {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return c.write(addr, b[:])
}

func nativeUint64(b []byte) uint64 { return binary.NativeEndian.Uint64(b) }
