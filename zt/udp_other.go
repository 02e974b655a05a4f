//go:build !linux

package zt

import (
	"errors"
	"net/netip"
	"sync"

	"github.com/ztnc/ztnc/zt/wire"
)

// Portable UDP I/O, one datagram per system call (see udp_linux.go for the batched version).

var batchIO = false

type batchReader struct {
	buf  []byte
	n    int
	from netip.AddrPort
}

func newBatchReader() *batchReader { return &batchReader{buf: make([]byte, 16<<10)} }

func (s *socket) read(r *batchReader) (int, error) {
	n, from, err := s.conn.ReadFromUDPAddrPort(r.buf)
	if err != nil {
		return 0, err
	}
	r.n, r.from = n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	return 1, nil
}

func (r *batchReader) datagram(int) ([]byte, netip.AddrPort, bool) { return r.buf[:r.n], r.from, true }

type batchWriter struct {
	data [wire.MaxFragments][]byte
	n    int
}

var batchWriters = sync.Pool{New: func() any { return &batchWriter{} }}

func (w *batchWriter) add(d []byte) error {
	if w.n == len(w.data) {
		return errors.New("too many fragments")
	}
	w.data[w.n] = append(w.data[w.n][:0], d...)
	w.n++
	return nil
}

func (s *socket) writeBatch(w *batchWriter, to netip.AddrPort) error {
	for _, d := range w.data[:w.n] {
		if err := s.writeTo(d, to); err != nil {
			return err
		}
	}
	return nil
}
