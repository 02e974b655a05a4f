//go:build !linux

package zt

import (
	"errors"
	"net"
	"net/netip"

	"github.com/ztnc/ztnc/zt/wire"
)

// Portable UDP I/O, one datagram per system call (see udp_linux.go for the batched version).

// writeTo sends one datagram.
func (s *socket) writeTo(b []byte, to netip.AddrPort) error {
	_, err := s.conn.WriteToUDPAddrPort(b, to)
	return err
}

var batchIO, offloadIO = false, false

func (s *socket) enableOffloads() {}

type batchReader struct {
	buf  []byte
	n    int
	from netip.AddrPort
}

func newBatchReader(*socket) *batchReader { return &batchReader{buf: make([]byte, 16<<10)} }

// readLoop receives datagrams one by one and hands each to deliver until the socket is
// closed, which it returns.
func (s *socket) readLoop(r *batchReader, deliver func(k int, err error)) error {
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(r.buf)
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		if err != nil {
			deliver(0, err)
			continue
		}
		r.n, r.from = n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		deliver(1, nil)
	}
}

func (r *batchReader) message(int) ([]byte, netip.AddrPort, int, bool) {
	return r.buf[:r.n], r.from, 0, true
}

// txBatch sends each datagram with its own system call.
type txBatch struct {
	sock *socket
	pkts []txPacket
}

type txPacket struct {
	p          wire.Packet
	mtu, total int
	to         netip.AddrPort
}

func getTxBatch(s *socket) *txBatch { return &txBatch{sock: s} }

func (b *txBatch) release() {}

func (b *txBatch) room(int) bool { return true }

func (b *txBatch) add(p wire.Packet, mtu, total int, to netip.AddrPort) error {
	b.pkts = append(b.pkts, txPacket{p, mtu, total, to})
	return nil
}

func (b *txBatch) flush() error {
	defer func() { b.pkts = b.pkts[:0] }()
	var buf [wire.FragmentHeaderSize + physicalMTU]byte
	for _, t := range b.pkts {
		cut := wire.EvenCut(len(t.p), t.mtu, t.total)
		if err := b.sock.writeTo(t.p[:cut], t.to); err != nil {
			return err
		}
		for i := 1; i < t.total; i++ {
			piece := wire.FragmentPiece((*[wire.FragmentHeaderSize]byte)(buf[:]), t.p, cut, i, t.total)
			n := copy(buf[wire.FragmentHeaderSize:], piece)
			if err := b.sock.writeTo(buf[:wire.FragmentHeaderSize+n], t.to); err != nil {
				return err
			}
		}
	}
	return nil
}
