//go:build linux

package zt

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/zt/wire"
)

// Batched UDP I/O with segmentation offload.
//
// Receive: recvmmsg takes up to batchSize messages per system call, and with UDP_GRO the
// kernel hands over runs of datagrams from one sender coalesced into one buffer with their
// common size (the sender's datagrams are unchanged on the wire: GRO is local).
//
// Send: the datagrams of a batch (the pieces of one or more packets) leave in one sendmmsg;
// with UDP_SEGMENT (GSO) consecutive datagrams of equal size to one address go as one
// message that the kernel cuts into ordinary datagrams, so the stack below handles a run of
// datagrams once instead of once per datagram. Fragmented packets are cut evenly
// (wire.EvenCut) so that full-size packets chain into one run. A kernel or device that
// refuses GSO (EIO, EINVAL) turns it off for the socket; the batch is sent again without.

const (
	batchSize   = 32
	maxDatagram = 16 << 10 // zerotier-one's largest unfragmented packets are 10 KB
	// maxCoalesced is the largest UDP payload a GSO or GRO message carries (IP's 64 KiB,
	// less headers).
	maxCoalesced = 65535 - 8 - 40
	// maxSegments is the kernel's UDP_MAX_SEGMENTS on older kernels (64; 128 since 6.6).
	maxSegments = 64
)

// batchIO can be turned off to compare (see BenchmarkFrames): one datagram per call then.
var batchIO = true

// offloadIO can be turned off to compare (see BenchmarkFrames): batches without GSO/GRO.
var offloadIO = true

// enableOffloads asks for GRO on a new socket (GSO needs no setup: it is per message).
func (s *socket) enableOffloads() {
	if !offloadIO || !batchIO {
		s.noGSO.Store(true)
		return
	}
	s.raw.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil {
			s.gro = true
		}
	})
}

// batchReader is the receive side's buffers and message headers.
type batchReader struct {
	msgs  [batchSize]unix.Mmsghdr
	iovs  [batchSize]unix.Iovec
	names [batchSize]unix.RawSockaddrInet6 // large enough for sockaddr_in too
	ctrl  [batchSize][unix.SizeofCmsghdr + 8]byte
	bufs  [batchSize][]byte
	n     int
	errno syscall.Errno
}

func newBatchReader(s *socket) *batchReader {
	r := &batchReader{}
	size := maxDatagram
	if s.gro {
		size = maxCoalesced
	}
	for i := range r.msgs {
		r.bufs[i] = make([]byte, size)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		r.msgs[i].Hdr.Iov = &r.iovs[i]
		r.msgs[i].Hdr.SetIovlen(1)
		r.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		if s.gro {
			r.msgs[i].Hdr.Control = &r.ctrl[i][0]
		}
	}
	return r
}

// readLoop receives batches of messages and hands each to deliver (k messages, or a receive
// error) until the socket is closed, which it returns.
//
// It stays in one RawConn.Read. RawRead clears the poller's readiness only on entry, so a
// batch shorter than the vector, which emptied the queue, can wait at once: anything that
// arrives later raises a new edge. Returning after each batch would cost a receive per wake-up
// that only learns EAGAIN (a datagram carries no state that a read can leave behind, unlike a
// stream's end of file).
func (s *socket) readLoop(r *batchReader, deliver func(k int, err error)) error {
	return s.raw.Read(func(fd uintptr) bool {
		for {
			if !r.recvmmsg(fd) {
				return false
			}
			if r.errno != 0 {
				deliver(0, r.errno)
				continue
			}
			deliver(r.n, nil)
			if r.n < r.vlen() {
				return false
			}
		}
	})
}

// recvmmsg receives the next batch into r (r.n messages, or r.errno); false when nothing is
// queued.
func (r *batchReader) recvmmsg(fd uintptr) bool {
	for i := range r.msgs {
		r.msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.msgs[i].Hdr.Flags = 0
		if r.msgs[i].Hdr.Control != nil {
			r.msgs[i].Hdr.SetControllen(len(r.ctrl[i]))
		}
	}
	r0, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(r.vlen()), 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
		return false
	}
	r.n, r.errno = int(r0), e
	return true
}

// vlen is how many messages one receive asks for.
func (r *batchReader) vlen() int {
	if !batchIO {
		return 1
	}
	return batchSize
}

// message returns message i of the last read, its sender and the size of the datagrams
// coalesced in it (the last may be shorter; 0: one datagram); ok is false for truncated
// messages and unknown address families.
func (r *batchReader) message(i int) (b []byte, from netip.AddrPort, segment int, ok bool) {
	m := &r.msgs[i]
	if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
		return nil, from, 0, false
	}
	sa := &r.names[i]
	switch sa.Family {
	case unix.AF_INET6:
		from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), ntohs(sa.Port))
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		from = netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), ntohs(sa4.Port))
	default:
		return nil, from, 0, false
	}
	if m.Hdr.Control != nil && m.Hdr.Controllen >= unix.SizeofCmsghdr+2 {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&r.ctrl[i][0]))
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO {
			segment = int(*(*uint16)(unsafe.Pointer(&r.ctrl[i][unix.SizeofCmsghdr])))
		}
	}
	return r.bufs[i][:m.Len], from, segment, true
}

func ntohs(p uint16) uint16 {
	var b [2]byte
	*(*uint16)(unsafe.Pointer(&b[0])) = p
	return binary.BigEndian.Uint16(b[:])
}

func htons(p uint16) uint16 { return ntohs(p) }

var errWrongFamily = errors.New("address family not reachable from this socket")

// writeTo sends one datagram, as a batch of one: its sendmmsg is made raw (see sendmmsg).
// net's WriteTo enters the runtime's system call bookkeeping, which, when the process was
// idle, wakes the runtime's monitor thread and sets it polling every 20 µs for the next
// millisecond: one packet after each idle spell, e.g. a SYN or SYN-ACK per connection when
// connections come one at a time, kept the monitor busy at ~5,000 wake-ups per second.
func (s *socket) writeTo(b []byte, to netip.AddrPort) error {
	tb := getTxBatch(s)
	defer tb.release()
	if err := tb.add(b, len(b), 1, to); err != nil {
		return err
	}
	return tb.flush()
}

// Limits of one transmit batch.
const (
	maxBatchDatagrams = 256
	maxBatchMsgs      = 64
)

// txBatch collects datagrams for one socket and sends them with one sendmmsg. A datagram is
// one or two iovecs (a fragment's 16-byte header and a slice of its packet: nothing is
// copied), so the packets added must stay unchanged until send returns.
type txBatch struct {
	dgrams []txDatagram
	iovs   []unix.Iovec
	hdrs   [][wire.FragmentHeaderSize]byte
	names  []unix.RawSockaddrInet6
	msgs   []unix.Mmsghdr
	ctrl   [][unix.SizeofCmsghdr + 8]byte
	keep   []wire.Packet // referenced by the iovecs until sent

	sock  *socket
	sent  int
	errno syscall.Errno
	send  func(fd uintptr) bool
}

// txDatagram is one datagram of a batch: iovecs [iov, iov+niov), its size and destination.
type txDatagram struct {
	iov, niov, size, name int
}

var txBatches = sync.Pool{New: func() any {
	b := &txBatch{
		dgrams: make([]txDatagram, 0, maxBatchDatagrams),
		iovs:   make([]unix.Iovec, 0, 2*maxBatchDatagrams),
		hdrs:   make([][wire.FragmentHeaderSize]byte, 0, maxBatchDatagrams),
		names:  make([]unix.RawSockaddrInet6, 0, maxBatchMsgs),
		msgs:   make([]unix.Mmsghdr, 0, maxBatchDatagrams),
		ctrl:   make([][unix.SizeofCmsghdr + 8]byte, maxBatchDatagrams),
	}
	b.send = b.sendmmsg
	return b
}}

func getTxBatch(s *socket) *txBatch {
	b := txBatches.Get().(*txBatch)
	b.sock = s
	return b
}

func (b *txBatch) release() {
	b.reset()
	b.sock = nil
	txBatches.Put(b)
}

func (b *txBatch) reset() {
	clear(b.keep)
	b.dgrams, b.iovs, b.hdrs, b.names, b.msgs, b.keep = b.dgrams[:0], b.iovs[:0], b.hdrs[:0], b.names[:0], b.msgs[:0], b.keep[:0]
}

// room reports whether a packet of total datagrams to a new address fits.
func (b *txBatch) room(total int) bool {
	return len(b.dgrams)+total <= maxBatchDatagrams && len(b.names) < maxBatchMsgs
}

// add appends armored packet p for to, cut evenly into total datagrams of at most mtu bytes
// (total from wire.FragmentCount; 1: unfragmented).
func (b *txBatch) add(p wire.Packet, mtu, total int, to netip.AddrPort) error {
	name, err := b.name(to)
	if err != nil {
		return err
	}
	b.keep = append(b.keep, p)
	if total == 1 {
		b.iovs = append(b.iovs, iovec(p))
		b.dgrams = append(b.dgrams, txDatagram{len(b.iovs) - 1, 1, len(p), name})
		return nil
	}
	cut := wire.EvenCut(len(p), mtu, total)
	b.iovs = append(b.iovs, iovec(p[:cut]))
	b.dgrams = append(b.dgrams, txDatagram{len(b.iovs) - 1, 1, cut, name})
	for i := 1; i < total; i++ {
		b.hdrs = append(b.hdrs, [wire.FragmentHeaderSize]byte{})
		h := &b.hdrs[len(b.hdrs)-1]
		piece := wire.FragmentPiece(h, p, cut, i, total)
		b.iovs = append(b.iovs, iovec(h[:]), iovec(piece))
		b.dgrams = append(b.dgrams, txDatagram{len(b.iovs) - 2, 2, wire.FragmentHeaderSize + len(piece), name})
	}
	return nil
}

// name returns the index of to's socket address, reusing the last one when it is the same.
func (b *txBatch) name(to netip.AddrPort) (int, error) {
	var sa unix.RawSockaddrInet6
	if b.sock.local.Addr().Is4() {
		if !to.Addr().Is4() {
			return 0, errWrongFamily
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(to.Port()), Addr: to.Addr().As4()}
	} else {
		sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(to.Port()), Addr: to.Addr().As16()}
	}
	if n := len(b.names); n > 0 && b.names[n-1] == sa {
		return n - 1, nil
	}
	b.names = append(b.names, sa)
	return len(b.names) - 1, nil
}

func iovec(b []byte) unix.Iovec {
	v := unix.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return v
}

// flush sends the batch and empties it.
func (b *txBatch) flush() error {
	if len(b.dgrams) == 0 {
		return nil
	}
	defer b.reset()
	s := b.sock
	gso := !s.noGSO.Load()
	err := b.sendAll(gso)
	if gso && (errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL)) && b.sent == 0 {
		// The path cannot segment (e.g. no checksum offload on the device): never again on
		// this socket.
		s.noGSO.Store(true)
		err = b.sendAll(false)
	}
	return err
}

// sendAll builds the messages (runs of equal-size datagrams to one address when gso) and
// sends them.
func (b *txBatch) sendAll(gso bool) error {
	b.msgs = b.msgs[:0]
	isV4 := b.sock.local.Addr().Is4()
	namelen := uint32(unix.SizeofSockaddrInet6)
	if isV4 {
		namelen = unix.SizeofSockaddrInet4
	}
	for i := 0; i < len(b.dgrams); {
		d := b.dgrams[i]
		j, bytes := i+1, d.size
		if gso && batchIO {
			// Extend the run while the next datagram has the same destination, its iovecs
			// follow on, and it is as large as the first (or smaller, which ends the run).
			for j < len(b.dgrams) && j-i < maxSegments {
				e := b.dgrams[j]
				if e.name != d.name || e.size > d.size || bytes+e.size > maxCoalesced {
					break
				}
				bytes += e.size
				j++
				if e.size < d.size {
					break
				}
			}
		}
		last := b.dgrams[j-1]
		var m unix.Mmsghdr
		m.Hdr.Name = (*byte)(unsafe.Pointer(&b.names[d.name]))
		m.Hdr.Namelen = namelen
		m.Hdr.Iov = &b.iovs[d.iov]
		m.Hdr.SetIovlen(last.iov + last.niov - d.iov)
		if j-i > 1 {
			c := &b.ctrl[len(b.msgs)]
			h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
			h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
			h.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&c[unix.SizeofCmsghdr])) = uint16(d.size)
			m.Hdr.Control = &c[0]
			m.Hdr.SetControllen(unix.CmsgSpace(2))
		}
		b.msgs = append(b.msgs, m)
		i = j
	}
	b.sent, b.errno = 0, 0
	var err error
	if batchIO {
		err = b.sock.raw.Write(b.send)
	} else {
		err = b.sock.raw.Write(b.sendSingly)
	}
	runtime.KeepAlive(b)
	if err != nil {
		return err
	}
	if b.errno != 0 {
		return b.errno
	}
	return nil
}

// sendmmsg is the body of sendAll, a method value made once per batch. The call is raw (no
// entersyscall): a non-blocking send never waits, and the runtime's bookkeeping would cost
// more than the call (see writeTo).
func (b *txBatch) sendmmsg(fd uintptr) bool {
	for b.sent < len(b.msgs) {
		r0, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.msgs[b.sent])), uintptr(len(b.msgs)-b.sent), 0, 0, 0)
		if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
			return false
		}
		if e != 0 {
			b.errno = e
			return true
		}
		b.sent += int(r0)
	}
	return true
}

// sendSingly sends one message per system call (batchIO off, for comparison).
func (b *txBatch) sendSingly(fd uintptr) bool {
	for b.sent < len(b.msgs) {
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&b.msgs[b.sent].Hdr)), 0)
		if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
			return false
		}
		if e != 0 {
			b.errno = e
			return true
		}
		b.sent++
	}
	return true
}
