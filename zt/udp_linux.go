//go:build linux

package zt

import (
	"encoding/binary"
	"errors"
	"net/netip"
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
	return r
}

// read waits for datagrams and returns how many arrived.
func (s *socket) read(r *batchReader) (int, error) {
	var n int
	var errno syscall.Errno
	err := s.raw.Read(func(fd uintptr) bool {
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
		n, errno = int(r0), e
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	}
	return n, nil
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

// batchWriter holds the pieces of one fragmented packet for sendmmsg.
type batchWriter struct {
	msgs  [wire.MaxFragments]unix.Mmsghdr
	iovs  [wire.MaxFragments]unix.Iovec
	name4 unix.RawSockaddrInet4
	name6 unix.RawSockaddrInet6
	data  [wire.MaxFragments][]byte
	n     int
}

var batchWriters = sync.Pool{New: func() any {
	w := &batchWriter{}
	for i := range w.data {
		w.data[i] = make([]byte, 0, physicalMTU)
	}
	return w
}}

var errTooManyPieces = errors.New("too many fragments")

// add copies one datagram into the batch.
func (w *batchWriter) add(d []byte) error {
	if w.n == len(w.data) {
		return errTooManyPieces
	}
	w.data[w.n] = append(w.data[w.n][:0], d...)
	w.n++
	return nil
}

// writeBatch sends the datagrams collected in w to one address.
func (s *socket) writeBatch(w *batchWriter, to netip.AddrPort) error {
	if !batchIO {
		for _, d := range w.data[:w.n] {
			if err := s.writeTo(d, to); err != nil {
				return err
			}
		}
		return nil
	}
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
	for i := range w.n {
		w.iovs[i].Base = &w.data[i][0]
		w.iovs[i].SetLen(len(w.data[i]))
		w.msgs[i].Hdr = unix.Msghdr{Name: (*byte)(name), Namelen: namelen, Iov: &w.iovs[i]}
		w.msgs[i].Hdr.SetIovlen(1)
	}
	sent := 0
	var errno syscall.Errno
	err := s.raw.Write(func(fd uintptr) bool {
		for sent < w.n {
			r0, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.msgs[sent])), uintptr(w.n-sent), 0, 0, 0)
			if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
				return false
			}
			if e != 0 {
				errno = e
				return true
			}
			sent += int(r0)
		}
		return true
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

func htons(p uint16) uint16 { return ntohs(p) }

var errWrongFamily = errors.New("address family not reachable from this socket")
