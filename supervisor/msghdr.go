package supervisor

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/notify"
)

// The structures sendmsg/recvmsg and their batched forms take, as they lie in the program's
// memory (x86-64): every field is read from there, so every value is checked.
const (
	sizeofMsghdr  = 56 // struct msghdr
	sizeofMmsghdr = 64 // struct mmsghdr: msghdr, unsigned msg_len, padding
	sizeofIovec   = 16
	sizeofCmsghdr = 16 // struct cmsghdr: size_t len, int level, int type

	msghdrNamelenOff    = 8
	msghdrControllenOff = 40
	msghdrFlagsOff      = 48
	mmsghdrLenOff       = 56

	maxIovecs = 1024 // UIO_MAXIOV
)

// msghdr is a decoded struct msghdr.
type msghdr struct {
	name       uint64
	namelen    uint32
	iov        uint64
	iovlen     uint64
	control    uint64
	controllen uint64
	flags      int32
}

func decodeMsghdr(b []byte) msghdr {
	ne := binary.NativeEndian
	return msghdr{
		name:       ne.Uint64(b[0:]),
		namelen:    ne.Uint32(b[8:]),
		iov:        ne.Uint64(b[16:]),
		iovlen:     ne.Uint64(b[24:]),
		control:    ne.Uint64(b[32:]),
		controllen: ne.Uint64(b[40:]),
		flags:      int32(ne.Uint32(b[48:])),
	}
}

// decodeIovecs parses n struct iovec, with Linux's limits: EMSGSIZE for more than UIO_MAXIOV,
// EINVAL when a length or their sum exceeds what a ssize_t holds.
func decodeIovecs(b []byte) ([]notify.Segment, int, error) {
	n := len(b) / sizeofIovec
	segs := make([]notify.Segment, 0, n)
	total := 0
	for i := range n {
		base := binary.NativeEndian.Uint64(b[i*sizeofIovec:])
		l := binary.NativeEndian.Uint64(b[i*sizeofIovec+8:])
		if l > maxRW {
			return nil, 0, unix.EINVAL
		}
		total += int(l)
		if total > maxRW {
			return nil, 0, unix.EINVAL
		}
		segs = append(segs, notify.Segment{Addr: base, Len: int(l)})
	}
	return segs, total, nil
}

// maxRW is the largest read or write Linux does at once (MAX_RW_COUNT); larger totals are
// clamped to it by the kernel, and rejected when they overflow ssize_t.
const maxRW = 1<<31 - 4096

// readMsghdr reads the struct msghdr at addr.
func (c *call) readMsghdr(addr uint64) (msghdr, error) {
	var raw [sizeofMsghdr]byte
	if err := c.read(addr, raw[:]); err != nil {
		return msghdr{}, err
	}
	return decodeMsghdr(raw[:]), nil
}

// sendEach runs sendmmsg(2) with send, one struct mmsghdr of the call's vector at a time,
// writing each one's length back: it returns how many were sent, or the first one's error.
func (c *call) sendEach(send func(hdr uint64) (int64, error)) (int64, error) {
	vec, vlen := c.Args[1], min(c.Args[2], maxIovecs)
	for i := range vlen {
		hdr := vec + i*sizeofMmsghdr
		n, err := send(hdr)
		if err != nil {
			if i > 0 && err != errAnswered {
				return int64(i), nil
			}
			return 0, err
		}
		if err := c.writeUint32(hdr+mmsghdrLenOff, uint32(n)); err != nil {
			return 0, err
		}
	}
	return int64(vlen), nil
}

// readIovecs reads the iovec array of a msghdr.
func (c *call) readIovecs(m *msghdr) ([]notify.Segment, int, error) {
	if m.iovlen > maxIovecs {
		return nil, 0, unix.EMSGSIZE
	}
	if m.iovlen == 0 {
		return nil, 0, nil
	}
	b := make([]byte, m.iovlen*sizeofIovec)
	if err := c.read(m.iov, b); err != nil {
		return nil, 0, err
	}
	return decodeIovecs(b)
}

// readName reads a sendmsg's destination address (nil if it names none).
func (c *call) readName(m *msghdr) ([]byte, error) {
	if m.name == 0 || m.namelen == 0 {
		return nil, nil
	}
	if m.namelen > maxSockaddrLen {
		return nil, unix.EINVAL
	}
	b := make([]byte, m.namelen)
	if err := c.read(m.name, b); err != nil {
		return nil, err
	}
	return b, nil
}

// readDatagram reads the datagram a sendmsg's iovecs describe: EMSGSIZE beyond what UDP or
// ICMP can carry, as Linux.
func (c *call) readDatagram(m *msghdr) ([]byte, error) {
	segs, size, err := c.readIovecs(m)
	if err != nil {
		return nil, err
	}
	if size > maxDgram {
		return nil, unix.EMSGSIZE
	}
	return c.gather(segs, size, maxDgram)
}

// readControl reads a sendmsg's control buffer (nil if it has none); ENOBUFS for one larger
// than Linux takes.
func (c *call) readControl(m *msghdr) ([]byte, error) {
	if m.controllen == 0 {
		return nil, nil
	}
	if m.controllen > maxOptLen {
		return nil, unix.ENOBUFS
	}
	b := make([]byte, m.controllen)
	if err := c.read(m.control, b); err != nil {
		return nil, err
	}
	return b, nil
}

// gather reads up to limit bytes of the data the segments describe.
func (c *call) gather(segs []notify.Segment, total, limit int) ([]byte, error) {
	b := make([]byte, min(total, limit))
	if err := notify.ReadMemoryv(c.Pid, segs, b); err != nil {
		if !c.s.l.Valid(c.ID) {
			return nil, errAnswered
		}
		return nil, unix.EFAULT
	}
	return b, nil
}

// scatter writes b across the segments.
func (c *call) scatter(segs []notify.Segment, b []byte) error {
	if err := notify.WriteMemoryv(c.Pid, segs, b); err != nil {
		if !c.s.l.Valid(c.ID) {
			return errAnswered
		}
		return unix.EFAULT
	}
	return nil
}

// cmsg is one control message.
type cmsg struct {
	level, typ int32
	data       []byte
}

func cmsgAlign(n int) int { return (n + 7) &^ 7 }

// parseCmsgs splits a control buffer from sendmsg, with Linux's checks (EINVAL for a length
// shorter than the header or past the end of the buffer).
func parseCmsgs(b []byte) ([]cmsg, error) {
	var out []cmsg
	for len(b) >= sizeofCmsghdr {
		l := binary.NativeEndian.Uint64(b[0:])
		if l < sizeofCmsghdr || l > uint64(len(b)) {
			return nil, unix.EINVAL
		}
		out = append(out, cmsg{
			level: int32(binary.NativeEndian.Uint32(b[8:])),
			typ:   int32(binary.NativeEndian.Uint32(b[12:])),
			data:  b[sizeofCmsghdr:l],
		})
		next := cmsgAlign(int(l))
		if next >= len(b) {
			break
		}
		b = b[next:]
	}
	return out, nil
}

// cmsgWriter builds recvmsg's control messages into a buffer of the program's size, as the
// kernel's put_cmsg does: a message that does not fit is cut to what room is left and the
// result marked MSG_CTRUNC.
type cmsgWriter struct {
	buf   []byte
	limit int
	trunc bool
}

func (w *cmsgWriter) add(level, typ int32, data []byte) {
	if w.trunc {
		return
	}
	room := w.limit - len(w.buf)
	if room < sizeofCmsghdr {
		w.trunc = true
		return
	}
	l := sizeofCmsghdr + len(data)
	if l > room {
		w.trunc = true
		l = room
	}
	var h [sizeofCmsghdr]byte
	binary.NativeEndian.PutUint64(h[0:], uint64(l))
	binary.NativeEndian.PutUint32(h[8:], uint32(level))
	binary.NativeEndian.PutUint32(h[12:], uint32(typ))
	w.buf = append(w.buf, h[:]...)
	w.buf = append(w.buf, data[:l-sizeofCmsghdr]...)
	if pad := cmsgAlign(l) - l; pad > 0 && len(w.buf)+pad <= w.limit {
		w.buf = append(w.buf, make([]byte, pad)...)
	}
}
