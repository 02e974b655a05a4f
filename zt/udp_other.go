//go:build !linux

package zt

import (
	"net/netip"

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

func (s *socket) writeFragments(p wire.Packet, mtu, total int, to netip.AddrPort) error {
	return s.writeFragmentsSingly(p, mtu, total, to)
}
