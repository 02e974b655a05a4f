package netstack

import (
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Datagram records: the header of every datagram the proxy delivers to the program's end,
// kept beside the data instead of in it (see ReadQueued).
//
// The program may read its socket without the supervisor (read, recv: calls a seccomp filter
// does not trap), so records of datagrams it has consumed are dropped by asking the kernel what
// is still queued: on a SOCK_SEQPACKET socket SIOCINQ is the sum of the queued messages'
// lengths, and the queued messages are the newest ones delivered. The proxy writes a datagram
// and pushes its record under one lock, so a snapshot never sees one without the other.

// maxRecords bounds the records of one socket. The program's end cannot hold more messages:
// each queued message is charged at least ~600 bytes of truesize to the proxy's send buffer
// (2 × dgramSndBuf after the kernel doubles it), so older records are of consumed datagrams.
const maxRecords = 2 * 2 * dgramSndBuf / 512

// trimCheck is how many records may pile up before the proxy asks the kernel whether its
// messages have all been consumed (one ioctl per trimCheck datagrams for programs that only
// read natively).
const trimCheck = 64

type record struct {
	h   DatagramHeader
	n   int           // payload length
	err syscall.Errno // an error marker: an empty message standing for an ICMP error
}

type records struct {
	mu    sync.Mutex
	q     []record // oldest first
	bytes int      // sum of q[i].n
}

// pushLocked records a datagram just written; proxyFD is the proxy's end, to notice when
// everything delivered has been read.
func (r *records) pushLocked(rec record, proxyFD int) {
	if len(r.q) >= trimCheck {
		if v, err := unix.IoctlGetInt(proxyFD, unix.SIOCOUTQ); err == nil && v == 0 {
			r.q, r.bytes = r.q[:0], 0
		}
	}
	if len(r.q) >= maxRecords {
		r.bytes -= r.q[0].n
		r.q = r.q[1:]
	}
	r.q = append(r.q, rec)
	r.bytes += rec.n
}

// syncLocked drops the records of datagrams the program has consumed, given queued, the bytes
// still queued on its end.
func (r *records) syncLocked(queued int) {
	i := 0
	for i < len(r.q) && r.bytes > queued {
		r.bytes -= r.q[i].n
		i++
	}
	if i > 0 {
		r.q = append(r.q[:0], r.q[i:]...)
	}
}

// ReadQueued receives the oldest datagram queued on the program's end of the spliced socket
// (fd: a copy of that end, e.g. from pidfd_getfd) as recvmsg(MSG_DONTWAIT|MSG_TRUNC) would,
// leaving it queued with peek (MSG_PEEK). It returns the bytes copied into b, the datagram's
// full length, and the header recorded when the proxy delivered it; known is false when no
// record matches (a datagram delivered before the splice or while address headers were on,
// or a race with the program reading the same socket from another thread). EAGAIN when
// nothing is queued; ENOTCONN before Splice.
//
// An ICMP error for a connected endpoint (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH) is
// delivered as an empty message recorded as that error, so that a program waiting in poll wakes
// up: ReadQueued then returns the error, as recvmsg would, and clears it from SoError (a native
// read sees an empty datagram).
//
// Records are kept for every spliced endpoint while address headers are off; the proxy then
// delivers bare datagrams, so programs may mix native reads with trapped ones.
func (e *DatagramEndpoint) ReadQueued(fd int, b []byte, peek bool) (n, total int, h DatagramHeader, known bool, err error) {
	sp := e.spliced.Load()
	if sp == nil {
		return 0, 0, h, false, unix.ENOTCONN
	}
	r := &sp.recs
	r.mu.Lock()
	defer r.mu.Unlock()
	queued, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return 0, 0, h, false, err
	}
	r.syncLocked(queued)
	flags := unix.MSG_DONTWAIT | unix.MSG_TRUNC
	if peek {
		flags |= unix.MSG_PEEK
	}
	for {
		n, _, _, _, err = unix.Recvmsg(fd, b, nil, flags)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, 0, h, false, err
	}
	// With MSG_TRUNC the kernel returns the full length of a SOCK_SEQPACKET message.
	total, n = n, min(n, len(b))
	// A datagram older than every record has none. Empty datagrams do not show in SIOCINQ:
	// leading empty records before a non-empty datagram were consumed natively.
	if r.bytes != queued {
		return n, total, h, false, nil
	}
	for len(r.q) > 0 && r.q[0].n == 0 && total != 0 {
		r.q = r.q[1:]
	}
	if len(r.q) == 0 || r.q[0].n != total {
		return n, total, h, false, nil
	}
	rec := r.q[0]
	if !peek {
		r.bytes -= rec.n
		r.q = r.q[1:]
	}
	if rec.err != 0 {
		e.pending.CompareAndSwap(uint32(rec.err), 0)
		return 0, 0, h, false, rec.err
	}
	return n, total, rec.h, true, nil
}

// Deliver writes a datagram that did not come from the stack (for example a host socket's,
// in a fall-through mode) into the spliced socket, in order with the stack's datagrams, with
// h recorded for ReadQueued (or in front of it while address headers are on). It does not
// wait: EAGAIN when the program's end is full (the datagram is dropped, as a full receive
// buffer drops), EMSGSIZE when b is larger than a datagram, ENOTCONN before Splice.
func (e *DatagramEndpoint) Deliver(h DatagramHeader, b []byte) error {
	sp := e.spliced.Load()
	if sp == nil {
		return unix.ENOTCONN
	}
	if len(b) > maxDatagram {
		return unix.EMSGSIZE
	}
	msg := b
	inband := e.headers.Load()
	if inband {
		buf := dgramBufs.Get().(*[dgramBufSize]byte)
		defer dgramBufs.Put(buf)
		h.Encode(buf[:DatagramHeaderLen])
		msg = buf[:DatagramHeaderLen+copy(buf[DatagramHeaderLen:], b)]
	}
	var werr error
	if err := sp.conn.rc.Control(func(fd uintptr) {
		sp.recs.mu.Lock()
		defer sp.recs.mu.Unlock()
		for {
			_, werr = unix.Write(int(fd), msg)
			if werr != unix.EINTR {
				break
			}
		}
		if werr == nil && !inband {
			sp.recs.pushLocked(record{h: h, n: len(msg)}, int(fd))
		}
	}); err != nil {
		return unix.ENOTCONN // the proxy stopped
	}
	if werr != nil {
		return werr
	}
	return nil
}
