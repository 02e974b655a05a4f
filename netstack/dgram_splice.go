package netstack

import (
	"bytes"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

const (
	// maxDatagram is the largest UDP payload (IPv6: 65535 - 8); ICMP echo fits too.
	maxDatagram = 65535 - 8
	// dgramBufSize holds a header and the largest datagram, plus one byte to notice a
	// datagram from the program that is too large (MSG_TRUNC).
	dgramBufSize = DatagramHeaderLen + maxDatagram + 1

	// dgramSndBuf is the send buffer asked for on the proxy's end: enough for a burst of
	// full-sized datagrams toward a program that is briefly busy (AF_UNIX datagram sockets
	// also cap the queue at net.unix.max_dgram_qlen datagrams).
	dgramSndBuf = 1 << 20
)

var dgramBufs = sync.Pool{New: func() any { return new([dgramBufSize]byte) }}

// dgramSplice proxies datagrams between a DatagramEndpoint and the proxy's end of an AF_UNIX
// SOCK_SEQPACKET (or SOCK_DGRAM) socketpair, one loop per direction (park.go). Each datagram the
// program writes is sent to the connected peer; each datagram received is written as one
// message, after a DatagramHeader while address headers are on, or else bare with its header
// recorded beside it (ReadQueued). Boundaries are kept both ways.
//
// Datagram semantics, not stream semantics: when the program does not read, the endpoint's
// receive buffer fills and the stack drops further datagrams (SO_RCVBUF), as Linux does.
type dgramSplice struct {
	loops     // stopping is closed by stop: the loops return (parked ones are run to return)
	e         *DatagramEndpoint
	seqpacket bool

	done chan struct{}
	once sync.Once

	// Per-direction state kept here rather than in closures, so that the loops do not
	// allocate per datagram.
	rbuf       *[dgramBufSize]byte // toNet
	rn, rflags int
	rerr       error
	readFn     func(fd uintptr) bool
	pending    pending[[dgramBufSize]byte] // a datagram waiting for room in the endpoint
	keepFn     func()                      // pending.keep, made once
	w          fillWriter                  // toUnix
	msg        []byte
	hdr        DatagramHeader
	merr       syscall.Errno // the message is an error marker (see ReadQueued)
	inband     bool
	werr       error
	writeFn    func(fd uintptr) bool

	// recs holds the headers of the datagrams delivered to the program (ReadQueued).
	recs records
}

// Splice starts proxying between the endpoint and f, the proxy's end of an AF_UNIX
// SOCK_SEQPACKET socketpair whose other end the program holds (SOCK_DGRAM works too, but a
// datagram socket does not tell when the program closed it: the supervisor must then call
// Close). It takes ownership of f and of the endpoint: when the program closes its end, the
// endpoint is closed and its port released.
//
// What the program writes goes to the connected peer without a header; sends that need an
// address (sendto) go through WriteTo. A send that fails (no route, EMSGSIZE, ECONNREFUSED)
// is dropped and its error kept for SoError, since the program's write already succeeded.
//
// Errors: EBUSY if already spliced, ENOTSOCK if f is not an AF_UNIX datagram socket,
// ENETDOWN if the stack is closed.
func (e *DatagramEndpoint) Splice(f *os.File) error {
	f, rc, err := pollableEnd(f)
	if err != nil {
		return syscall.ENOTSOCK
	}
	conn := unixEnd{f, rc}
	var typ int
	rc.Control(func(fd uintptr) {
		typ, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, dgramSndBuf) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, dgramSndBuf)
		}
	})
	if typ != unix.SOCK_SEQPACKET && typ != unix.SOCK_DGRAM {
		conn.Close()
		return syscall.ENOTSOCK
	}
	sp := &dgramSplice{e: e, seqpacket: typ == unix.SOCK_SEQPACKET, done: make(chan struct{})}
	s := e.s
	sp.init(s, e.ep, e.wq, conn, sp.toNet, sp.toUnix, sp.finish)
	sp.readFn, sp.writeFn = sp.readUnix, sp.writeUnix
	sp.pending.pool, sp.keepFn = &dgramBufs, sp.pending.keep
	if !e.spliced.CompareAndSwap(nil, sp) {
		conn.Close()
		return syscall.EBUSY
	}
	if !s.startSplice(sp) {
		conn.Close()
		e.close()
		close(sp.done)
		return syscall.ENETDOWN
	}

	sp.start()
	return nil
}

// finish: both loops have finished.
func (sp *dgramSplice) finish() {
	sp.stop()
	close(sp.done)
	sp.e.s.spliceDone(sp)
}

// Done is closed when a spliced endpoint has been closed and its socket released; nil
// before Splice.
func (e *DatagramEndpoint) Done() <-chan struct{} {
	if sp := e.spliced.Load(); sp != nil {
		return sp.done
	}
	return nil
}

// shutdown implements proxy: the stack is closing.
func (sp *dgramSplice) shutdown() { sp.stop() }

// sweep implements proxy: loops quiet since the last sweep are asked to park.
func (sp *dgramSplice) sweep() {
	if !sp.isStopping() {
		sp.nudge()
	}
}

// stop closes the socket (both loops return) and the endpoint.
func (sp *dgramSplice) stop() {
	sp.once.Do(func() {
		sp.stopLoops()
		sp.conn.Close()
		sp.e.close()
	})
}

// toNet sends what the program writes. It reports whether it has finished: false when it
// parked, and a wake-up runs it again.
func (sp *dgramSplice) toNet() bool {
	if sp.isStopping() { // resumed by stop
		sp.pending.drop()
		return true
	}
	if ret, finished := sp.sendPending(); ret { // resumed with room to send
		return finished
	}
	for {
		if got, finished := sp.readNet(sp.readFn); !got {
			return finished
		}
		buf, n, flags, rerr := sp.rbuf, sp.rn, sp.rflags, sp.rerr
		sp.rbuf = nil
		if rerr != nil {
			dgramBufs.Put(buf)
			sp.stop()
			return true
		}
		if n == 0 && sp.seqpacket && sp.hungUp() {
			dgramBufs.Put(buf)
			sp.stop() // the program closed its socket
			return true
		}
		if flags&unix.MSG_TRUNC != 0 || n > maxDatagram {
			dgramBufs.Put(buf)
			sp.e.setPending(syscall.EMSGSIZE)
			continue
		}
		sp.pending.set(buf, buf[:n])
		if ret, finished := sp.sendPending(); ret {
			return finished
		}
	}
}

// sendPending sends the datagram toNet read, waiting for room (or parking) while the
// endpoint's send buffer is full. ret tells toNet to return: finished, or parked with the
// datagram kept.
func (sp *dgramSplice) sendPending() (ret, finished bool) {
	var r bytes.Reader
	for sp.pending.held {
		r.Reset(sp.pending.data)
		_, werr := sp.e.ep.Write(&r, tcpip.WriteOptions{})
		if _, ok := werr.(*tcpip.ErrWouldBlock); ok {
			if ret, finished := sp.awaitNet(sp.keepFn); ret {
				if finished {
					sp.pending.drop()
				}
				return true, finished
			}
			continue
		}
		if werr != nil {
			sp.e.s.stats.dropDatagramSend.Add(1)
			sp.e.setPending(errno(werr))
		}
		sp.pending.drop()
	}
	return false, false
}

// readUnix receives one datagram from the program into a pooled buffer; when none is there,
// see emptyRead.
func (sp *dgramSplice) readUnix(fd uintptr) bool {
	buf := dgramBufs.Get().(*[dgramBufSize]byte)
	for {
		sp.rn, _, sp.rflags, _, sp.rerr = unix.Recvmsg(int(fd), buf[:maxDatagram+1], nil, 0)
		if sp.rerr != unix.EINTR {
			break
		}
	}
	if sp.rerr == unix.EAGAIN {
		dgramBufs.Put(buf)
		return sp.emptyRead()
	}
	sp.rbuf = buf
	return true
}

// writeUnix writes sp.msg as one message, and records sp.hdr for it unless the header is
// in-band; false while the socket is full.
func (sp *dgramSplice) writeUnix(fd uintptr) bool {
	sp.recs.mu.Lock()
	for {
		_, sp.werr = unix.Write(int(fd), sp.msg)
		if sp.werr != unix.EINTR {
			break
		}
	}
	if sp.werr == nil && !sp.inband {
		sp.recs.pushLocked(record{h: sp.hdr, n: len(sp.msg), err: sp.merr}, int(fd))
	}
	sp.recs.mu.Unlock()
	return sp.werr != unix.EAGAIN
}

// deliverError writes an empty message recorded as err, waking a program that polls (see
// ReadQueued).
func (sp *dgramSplice) deliverError(err syscall.Errno) {
	sp.msg, sp.inband, sp.merr = nil, false, err
	sp.hdr = DatagramHeader{}
	sp.conn.rc.Write(sp.writeFn)
	sp.merr = 0
}

// hungUp reports whether the program closed its end.
func (sp *dgramSplice) hungUp() bool {
	hup := false
	sp.conn.rc.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(p, 0); n == 1 && p[0].Revents&(unix.POLLHUP|unix.POLLRDHUP) != 0 {
			hup = true
		}
	})
	return hup
}

// toUnix delivers received datagrams to the program. It reports whether it has finished:
// false when it parked, and a wake-up runs it again.
func (sp *dgramSplice) toUnix() bool {
	if sp.isStopping() { // resumed by stop
		return true
	}
	ep := sp.e.ep
	for {
		buf := dgramBufs.Get().(*[dgramBufSize]byte)
		headers := sp.e.headers.Load()
		off := 0
		if headers {
			off = DatagramHeaderLen
		}
		sp.w = fillWriter{b: buf[off : off+maxDatagram]}
		res, rerr := ep.Read(&sp.w, tcpip.ReadOptions{NeedRemoteAddr: true})
		if rerr != nil {
			dgramBufs.Put(buf)
			switch rerr.(type) {
			case *tcpip.ErrWouldBlock:
				if ret, finished := sp.awaitUnix(&sp.unixWake); ret {
					return finished
				}
				continue
			case *tcpip.ErrConnectionRefused, *tcpip.ErrHostUnreachable, *tcpip.ErrNetworkUnreachable:
				// An ICMP error for a connected socket: Linux reports it on the next call.
				sp.e.setPending(errno(rerr))
				if !sp.e.headers.Load() {
					sp.deliverError(errno(rerr))
				}
				continue
			}
			sp.stop() // the endpoint was closed
			return true
		}
		sp.hdr = sp.e.header(&res)
		sp.inband = headers
		if headers {
			sp.hdr.Encode(buf[:DatagramHeaderLen])
		}
		sp.msg = buf[:off+sp.w.n]
		err := sp.conn.rc.Write(sp.writeFn)
		werr := sp.werr
		sp.msg = nil
		dgramBufs.Put(buf)
		if werr == unix.EPIPE && !sp.hungUp() {
			// The program shut its end down for reading (shutdown(2)) and keeps it: what
			// arrives from then on is dropped.
			sp.e.s.stats.dropDatagramRecv.Add(1)
			continue
		}
		if err != nil || werr == unix.EPIPE || werr == unix.ECONNREFUSED || werr == unix.ECONNRESET {
			sp.stop() // closed by stop, or the program closed its end
			return true
		}
		if werr != nil {
			sp.e.s.stats.dropDatagramRecv.Add(1)
		}
	}
}
