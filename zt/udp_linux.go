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

// Batched UDP I/O: recvmmsg takes up to batchSize datagrams per system call, and the pieces
// of a fragmented packet leave in one sendmmsg.

const (
	batchSize   = 32
	maxDatagram = 16 << 10 // zerotier-one's largest unfragmented packets are 10 KB
)

// batchIO can be turned off to compare (see BenchmarkFrames): one datagram per call then.
var batchIO = true

// batchReader is the receive side's buffers and message headers.
type batchReader struct {
	msgs  [batchSize]unix.Mmsghdr
	iovs  [batchSize]unix.Iovec
	names [batchSize]unix.RawSockaddrInet6 // large enough for sockaddr_in too
	bufs  [batchSize][]byte
	n     int
	errno syscall.Errno
	recv  func(fd uintptr) bool
}

func newBatchReader() *batchReader {
	r := &batchReader{}
	for i := range r.msgs {
		r.bufs[i] = make([]byte, maxDatagram)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(maxDatagram)
		r.msgs[i].Hdr.Iov = &r.iovs[i]
		r.msgs[i].Hdr.SetIovlen(1)
		r.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	r.recv = r.recvmmsg
	return r
}

// read waits for datagrams and returns how many arrived.
func (s *socket) read(r *batchReader) (int, error) {
	if err := s.raw.Read(r.recv); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, r.errno
	}
	return r.n, nil
}

// recvmmsg is the body of read, a method value made once so that no closure is allocated per
// read.
func (r *batchReader) recvmmsg(fd uintptr) bool {
	for i := range r.msgs {
		r.msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.msgs[i].Hdr.Flags = 0
	}
	vlen := uintptr(batchSize)
	if !batchIO {
		vlen = 1
	}
	r0, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), vlen, 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
		return false
	}
	r.n, r.errno = int(r0), e
	return true
}

// datagram returns datagram i of the last read and its sender; ok is false for truncated
// datagrams and unknown address families.
func (r *batchReader) datagram(i int) (b []byte, from netip.AddrPort, ok bool) {
	m := &r.msgs[i]
	if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
		return nil, from, false
	}
	sa := &r.names[i]
	switch sa.Family {
	case unix.AF_INET6:
		from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), ntohs(sa.Port))
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		from = netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), ntohs(sa4.Port))
	default:
		return nil, from, false
	}
	return r.bufs[i][:m.Len], from, true
}

func ntohs(p uint16) uint16 {
	var b [2]byte
	*(*uint16)(unsafe.Pointer(&b[0])) = p
	return binary.BigEndian.Uint16(b[:])
}

// batchWriter holds the message headers for sending the pieces of one fragmented packet with
// one sendmmsg: the head is a slice of the packet, every other piece its 16-byte fragment
// header and a slice of the packet (no copying).
type batchWriter struct {
	msgs  [wire.MaxFragments]unix.Mmsghdr
	iovs  [wire.MaxFragments][2]unix.Iovec
	hdrs  [wire.MaxFragments][wire.FragmentHeaderSize]byte
	name4 unix.RawSockaddrInet4
	name6 unix.RawSockaddrInet6
	total int
	sent  int
	errno syscall.Errno
	send  func(fd uintptr) bool
}

var batchWriters = sync.Pool{New: func() any {
	w := new(batchWriter)
	w.send = w.sendmmsg
	return w
}}

// sendmmsg is the body of writeFragments, a method value made once per batchWriter.
func (w *batchWriter) sendmmsg(fd uintptr) bool {
	for w.sent < w.total {
		r0, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.msgs[w.sent])), uintptr(w.total-w.sent), 0, 0, 0)
		if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
			return false
		}
		if e != 0 {
			w.errno = e
			return true
		}
		w.sent += int(r0)
	}
	return true
}

// writeFragments sends armored packet p, cut at mtu into total pieces, to one address.
func (s *socket) writeFragments(p wire.Packet, mtu, total int, to netip.AddrPort) error {
	if !batchIO {
		return s.writeFragmentsSingly(p, mtu, total, to)
	}
	w := batchWriters.Get().(*batchWriter)
	defer batchWriters.Put(w)
	var name unsafe.Pointer
	var namelen uint32
	if s.local.Addr().Is4() {
		if !to.Addr().Is4() {
			return errWrongFamily
		}
		w.name4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(to.Port()), Addr: to.Addr().As4()}
		name, namelen = unsafe.Pointer(&w.name4), unix.SizeofSockaddrInet4
	} else {
		w.name6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(to.Port()), Addr: to.Addr().As16()}
		name, namelen = unsafe.Pointer(&w.name6), unix.SizeofSockaddrInet6
	}
	for i := range total {
		iov := &w.iovs[i]
		niov := 1
		if i == 0 {
			iov[0].Base = &p[0]
			iov[0].SetLen(mtu)
		} else {
			piece := wire.FragmentPiece(&w.hdrs[i], p, mtu, i, total)
			iov[0].Base = &w.hdrs[i][0]
			iov[0].SetLen(wire.FragmentHeaderSize)
			iov[1].Base = &piece[0]
			iov[1].SetLen(len(piece))
			niov = 2
		}
		w.msgs[i].Hdr = unix.Msghdr{Name: (*byte)(name), Namelen: namelen, Iov: &iov[0]}
		w.msgs[i].Hdr.SetIovlen(niov)
	}
	w.total, w.sent, w.errno = total, 0, 0
	err := s.raw.Write(w.send)
	runtime.KeepAlive(p)
	if err != nil {
		return err
	}
	if w.errno != 0 {
		return w.errno
	}
	return nil
}

func htons(p uint16) uint16 { return ntohs(p) }

var errWrongFamily = errors.New("address family not reachable from this socket")
