package netstack

import (
	"bytes"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	// spliceBufSize is the unit of copying between the socketpair and the endpoint. A buffer
	// is taken from the pool only while data is in hand: idle connections hold none.
	spliceBufSize = 64 << 10

	// unixSndBuf is the send buffer asked for on the proxy's end of the socketpair, which on
	// AF_UNIX stream sockets bounds the data queued toward the program. It keeps a fast
	// stream from stalling on every read the program makes (Linux's default is 208 KiB);
	// without CAP_NET_ADMIN the kernel clamps it to net.core.wmem_max.
	unixSndBuf = 4 << 20

	// Keepalive for spliced connections whose program did not choose SO_KEEPALIVE itself: a
	// ZeroTier peer can vanish without a FIN or RST (host suspended, network left), and
	// without keepalive the program would wait on the connection forever while its endpoint
	// and socketpair are held here. After 2 minutes of silence, 9 probes 30 s apart: a dead peer is
	// noticed within 7 minutes and the program sees the connection end.
	spliceKeepaliveIdle     = 2 * time.Minute
	spliceKeepaliveInterval = 30 * time.Second
	spliceKeepaliveCount    = 9
)

// The keepalive settings as gVisor's options, which SetSockOpt only reads: shared, so that
// no connection allocates its own.
var (
	spliceKeepaliveIdleOpt     = tcpip.KeepaliveIdleOption(spliceKeepaliveIdle)
	spliceKeepaliveIntervalOpt = tcpip.KeepaliveIntervalOption(spliceKeepaliveInterval)
)

var spliceBufs = sync.Pool{New: func() any { return new([spliceBufSize]byte) }}

// splice is the proxy between an established endpoint and the proxy's end of an AF_UNIX
// stream socketpair whose other end the program holds. Two loops, one per direction, each on
// a goroutine while it runs (a loop idle for long parks without one, see park.go):
//
//   - toNet reads the socket and writes the endpoint. End of file (the program shut down
//     writing or closed) sends FIN; ECONNRESET (the program closed with data unread) sends
//     RST. After FIN it watches the socket for hang-up: a program that closed its socket
//     turns the endpoint into an orphan, as Linux does (FIN_WAIT2 timeout, RST on data).
//   - toUnix reads the endpoint and writes the socket. FIN from the peer shuts the socket
//     down for writing (the program reads end of file); a write the program can no longer
//     receive (EPIPE) resets the connection, as Linux resets data sent to a closed socket.
//
// Backpressure is end to end: a full send buffer stops toNet from reading the socket, so the
// program blocks in write; a program that does not read fills the socket, toUnix stops
// reading, and the endpoint advertises a zero window.
type splice struct {
	loops // stopping is closed by stop: the loops return (parked ones are run to return)
	e     *TCPEndpoint
	done  chan struct{} // closed when everything is released

	// State of toNet's socket reads and toUnix's endpoint reads, kept here (not in
	// closures) so that the loops do not allocate.
	rbuf    *[spliceBufSize]byte
	rn      int
	rerr    error
	readFn  func(fd uintptr) bool
	pending pending[[spliceBufSize]byte]
	keepFn  func() // pending.keep, made once
	w       fillWriter
	// State of toUnix's socket writes.
	wdata   []byte
	werr    unix.Errno
	writeFn func(fd uintptr) bool
	// toUnix has delivered the peer's FIN and watches the half-open connection.
	halfOpen bool
	// toNet has sent the program's FIN and waits for its close (watchHangUp).
	awaitingClose bool

	mu           sync.Mutex
	onDone       func() // see TCPEndpoint.OnDone
	finished     bool   // done is closed
	netDone      bool   // toNet saw end of file and sent FIN
	unixDone     bool   // toUnix delivered the peer's FIN
	stopped      bool   // stop ran
	resetting    bool   // stop left the socket for release to reset (resetProgram)
	programReset bool   // resetProgram left ECONNRESET pending on the program's end
	err          error  // what ended the connection, if not an orderly close
}

// Splice starts proxying between the established endpoint and f, a connected AF_UNIX
// SOCK_STREAM socket (the supervisor's end of a socketpair whose other end the program
// holds), and returns. It takes ownership of f, which it closes, and of the endpoint, which
// it closes once both directions have finished (or resets when the connection breaks).
//
// The program sees TCP semantics on its end: data both ways with backpressure, half-close
// each way on its own (shutdown(SHUT_WR) on its end sends FIN; the peer's FIN reads as end
// of file), and close(2) on its end closes the connection as Linux does: FIN, or RST when
// received data was left unread, data arrives after the close, or SO_LINGER is {1, 0}. When
// the network breaks the connection (the peer's RST, a timeout, an unreachable peer), the
// program reads what had arrived and then fails with ECONNRESET, as on a reset TCP socket,
// provided SetProgramEnd gave the proxy a way to reach its end (see resetProgram); without
// one, or once the program has shut down writing, it reads end of file. Err gives the precise
// error (ETIMEDOUT, ...) so the supervisor can answer SO_ERROR with it. Unless the program set
// SO_KEEPALIVE, keepalive is turned on so that vanished peers are noticed.
//
// The program's shutdown(2) and close(2) must act on its socket, not on the endpoint; the
// supervisor may still Close or Abort the endpoint to end the connection from outside.
//
// Errors: ENOTCONN if the endpoint was never connected, EBUSY if already spliced, ENOTSOCK if
// f is not a stream socket, ENETDOWN if the stack is closed.
func (e *TCPEndpoint) Splice(f *os.File) error {
	switch tcp.EndpointState(e.ep.State()) {
	case tcp.StateInitial, tcp.StateBound, tcp.StateListen, tcp.StateConnecting, tcp.StateSynSent, tcp.StateSynRecv:
		f.Close()
		return syscall.ENOTCONN
	}
	f, rc, err := pollableEnd(f)
	if err != nil {
		return syscall.ENOTSOCK
	}
	conn := unixEnd{f, rc}
	sp := &splice{e: e, done: make(chan struct{})}
	sp.init(e.s, e.ep, e.wq, conn, sp.toNet, sp.toUnix, sp.finish)
	sp.readFn, sp.writeFn = sp.readUnix, sp.writeSome
	sp.pending.pool, sp.keepFn = &spliceBufs, sp.pending.keep
	if !sp.setUpUnix() {
		conn.Close()
		return syscall.ENOTSOCK
	}
	s := e.s
	if !e.spliced.CompareAndSwap(nil, sp) {
		conn.Close()
		return syscall.EBUSY
	}
	if !s.startSplice(sp) {
		conn.Close()
		e.once.Do(e.ep.Abort)
		close(sp.done)
		return syscall.ENETDOWN
	}

	if user := e.keepaliveUser.Load(); user&kaEnable == 0 {
		if user&kaIdle == 0 {
			e.ep.SetSockOpt(&spliceKeepaliveIdleOpt)
		}
		if user&kaIntvl == 0 {
			e.ep.SetSockOpt(&spliceKeepaliveIntervalOpt)
		}
		if user&kaCnt == 0 {
			e.ep.SetSockOptInt(tcpip.KeepaliveCountOption, spliceKeepaliveCount)
		}
		e.ep.SocketOptions().SetKeepAlive(true)
	}

	sp.start()
	return nil
}

// finish: both loops have finished, the connection is released.
func (sp *splice) finish() {
	s := sp.e.s
	sp.release()
	s.timeWait.ended(time.Now())
	close(sp.done)
	s.spliceDone(sp)
	sp.mu.Lock()
	sp.finished = true
	fn := sp.onDone
	sp.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// A ProgramEnd reaches the program's end of a spliced socketpair from outside the program.
type ProgramEnd interface {
	// CopyFD returns a new descriptor (the caller closes it) for the program's end, or -1
	// when it cannot be found any more.
	CopyFD() int
}

// SetProgramEnd tells a later Splice how to reach the program's end, which it needs only
// when the network breaks the connection (see resetProgram).
func (e *TCPEndpoint) SetProgramEnd(p ProgramEnd) { e.progEnd = p }

// Done is closed when a spliced connection has ended and its endpoint and socket are
// released. It is nil before Splice.
func (e *TCPEndpoint) Done() <-chan struct{} {
	if sp := e.spliced.Load(); sp != nil {
		return sp.done
	}
	return nil
}

// OnDone arranges for fn to run once a spliced connection has ended and is released (when
// Done is closed), on the goroutine that released it — at once, on the caller's, if that has
// happened already. It saves a goroutine waiting on Done per connection. Only the last
// function given runs. It reports false (and never runs fn) before Splice.
func (e *TCPEndpoint) OnDone(fn func()) bool {
	sp := e.spliced.Load()
	if sp == nil {
		return false
	}
	sp.mu.Lock()
	if !sp.finished {
		sp.onDone = fn
		sp.mu.Unlock()
		return true
	}
	sp.mu.Unlock()
	fn()
	return true
}

// Err returns the error that ended a spliced connection (ECONNRESET, ETIMEDOUT, ...), or nil
// if it ended in order or is still running.
func (e *TCPEndpoint) Err() error {
	err, _ := e.Ending()
	return err
}

// Ending returns what ended a spliced connection: Err's error, and whether the program's end
// was left failing with ECONNRESET when the network broke it (see resetProgram). That error is
// pending on the program's socket until a read, or getsockopt(SO_ERROR), takes it.
func (e *TCPEndpoint) Ending() (err error, programReset bool) {
	sp := e.spliced.Load()
	if sp == nil {
		return nil, false
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.err, sp.programReset
}

// pollableEnd returns f, or when f is in blocking mode a non-blocking copy of it (f is then
// closed), with its RawConn: reads and writes wait in the runtime's poller. A socket the
// supervisor made non-blocking is used as it is: net.FileConn would dup it and look up its
// type and both addresses, seven system calls per connection that the proxy has no use for.
func pollableEnd(f *os.File) (*os.File, syscall.RawConn, error) {
	if f.SetDeadline(time.Time{}) != nil { // os.ErrNoDeadline: not in the poller
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		nfd, serr := -1, error(nil)
		if err := rc.Control(func(fd uintptr) {
			if nfd, serr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); serr == nil {
				serr = unix.SetNonblock(nfd, true)
			}
		}); err != nil {
			serr = err
		}
		name := f.Name()
		f.Close()
		if serr != nil {
			if nfd >= 0 {
				unix.Close(nfd)
			}
			return nil, nil, serr
		}
		f = os.NewFile(uintptr(nfd), name)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, rc, nil
}

// unixEnd is the proxy's end of the socketpair.
type unixEnd struct {
	*os.File
	rc syscall.RawConn
}

// release ends the proxy's use of the socket without a system call the runtime sees: the
// program's end sees the connection end at once (both directions shut down, as a close
// leaves it), goroutines waiting on the socket return (a past deadline wakes them as a close
// does), and the descriptor is closed a little later with others (closer).
func (u unixEnd) release() {
	u.rc.Control(func(fd uintptr) { rawShutdown(fd, unix.SHUT_RDWR) })
	u.SetDeadline(time.Unix(1, 0))
	lateCloser.closeLater(u.File)
}

// CloseWrite shuts the socket down for writing: the program reads end of file.
func (u unixEnd) CloseWrite() error {
	var serr error
	if err := u.rc.Control(func(fd uintptr) { serr = rawShutdown(fd, unix.SHUT_WR) }); err != nil {
		return err
	}
	return serr
}

// setUpUnix checks that the socket is a stream socket and enlarges its send buffer, beyond
// wmem_max when we may. It reports false for anything but a stream socket.
func (sp *splice) setUpUnix() bool {
	ok := false
	sp.conn.rc.Control(func(fd uintptr) {
		if typ, e := rawGetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); e != 0 || typ != unix.SOCK_STREAM {
			return
		}
		ok = true
		if rawSetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, unixSndBuf) != 0 {
			rawSetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, unixSndBuf)
		}
	})
	return ok
}

// toNet copies program → network. It reports whether it has finished: false when it parked
// (park.go), and a wake-up runs it again.
func (sp *splice) toNet() bool {
	if sp.isStopping() { // resumed by stop
		sp.pending.drop()
		return true
	}
	if sp.awaitingClose {
		return sp.watchHangUp()
	}
	if ret, finished := sp.sendPending(); ret { // resumed with room to write
		return finished
	}
	for {
		if got, finished := sp.readNet(sp.readFn); !got {
			return finished
		}
		buf, n, rerr := sp.rbuf, sp.rn, sp.rerr
		sp.rbuf = nil
		switch {
		case rerr == unix.ECONNRESET:
			// The program closed its socket without reading everything: Linux resets.
			spliceBufs.Put(buf)
			sp.stop(true, 0)
			return true
		case rerr != nil:
			spliceBufs.Put(buf)
			sp.stop(true, 0)
			return true
		case n == 0:
			spliceBufs.Put(buf)
			return sp.finishToNet()
		}
		sp.pending.set(buf, buf[:n])
		if ret, finished := sp.sendPending(); ret {
			return finished
		}
	}
}

// sendPending writes what toNet read to the endpoint, waiting for room (or parking) while its
// send buffer is full. ret tells toNet to return: finished, or parked with the rest kept.
func (sp *splice) sendPending() (ret, finished bool) {
	var r bytes.Reader
	for len(sp.pending.data) > 0 {
		r.Reset(sp.pending.data)
		m, werr := sp.e.ep.Write(&r, tcpip.WriteOptions{})
		sp.pending.data = sp.pending.data[m:]
		switch werr.(type) {
		case nil:
		case *tcpip.ErrWouldBlock:
			if ret, finished := sp.awaitNet(sp.keepFn); ret {
				if finished {
					sp.pending.drop()
				}
				return true, finished
			}
		default:
			sp.pending.drop()
			sp.stop(true, errno(werr))
			return true, true
		}
	}
	sp.pending.drop()
	return false, false
}

// readUnix reads the socket into a pooled buffer (sp.rbuf, sp.rn, sp.rerr); when nothing is
// there, see emptyRead. The buffer is taken only when data is.
func (sp *splice) readUnix(fd uintptr) bool {
	sp.netLoop.wakes.Add(1)
	buf := spliceBufs.Get().(*[spliceBufSize]byte)
	var errno unix.Errno
	for {
		sp.rn, errno = rawRead(fd, buf[:], 0)
		if errno != unix.EINTR {
			break
		}
	}
	if errno == unix.EAGAIN {
		spliceBufs.Put(buf)
		return sp.emptyRead()
	}
	sp.rerr = nil
	if errno != 0 {
		sp.rerr = errno
	}
	sp.rbuf = buf
	return true
}

// finishToNet handles the program's end of file. If the program closed its socket, the
// endpoint is closed as close(2) closes (FIN; RST with unread data or SO_LINGER 0). If it
// only shut down writing, FIN goes out, and the socket is watched for the close that
// follows (hang-up) unless the peer has finished too. It reports whether toNet has finished
// (false: parked in that watch).
func (sp *splice) finishToNet() bool {
	// Nothing more can join a corked segment: push it out with the FIN, as Linux's
	// shutdown and close do (gVisor holds it, FIN behind it, for its 200 ms cork timer —
	// every Connection: close response of an nginx with tcp_nopush on waited that long).
	sp.e.ep.SocketOptions().SetCorkOption(false)
	if sp.hungUp() {
		sp.stop(false, 0)
		return true
	}
	// netDone before the FIN: toUnix's watch for a reset takes the close that follows our
	// FIN's acknowledgement for the normal end it is (see watchHalfOpen).
	sp.mu.Lock()
	sp.netDone = true
	both := sp.unixDone
	sp.mu.Unlock()
	sp.e.ep.Shutdown(tcpip.ShutdownWrite)
	if both {
		sp.stop(false, 0) // this also ends toUnix's watch
		return true
	}
	sp.awaitingClose = true
	return sp.watchHangUp()
}

// watchHangUp is toNet once the program has shut down writing and its FIN has gone: it waits
// until the socket hangs up (the program closed it) or stop closes it, and reports whether it
// has finished (false: parked). Nothing else reads the socket any more, so the poller's read
// side is ours. Like the copy it parks when the sweep asks, or at once when cold: a program
// may keep its half of a connection open for long (a client waiting for a long answer).
func (sp *splice) watchHangUp() bool {
	for {
		hup, unread := false, false
		sp.conn.rc.Read(func(fd uintptr) bool {
			hup = pollHUP(fd)
			if hup {
				// af_unix leaves ECONNRESET on this end when the program closed with data
				// unread, as on the read path (toNet).
				e, _ := rawGetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
				unread = e == int(unix.ECONNRESET)
			}
			return hup || sp.netLoop.cold
		})
		switch {
		case hup:
			// The program closed: the endpoint becomes an orphan, closed like Linux closes
			// it: RST if the program left data unread, or if data comes in that it never
			// reads.
			sp.stop(unread, 0)
			return true
		case sp.isStopping():
			return true
		}
		// Cold, or the sweep's nudge (a read deadline in the past).
		if r := sp.parkHangUp(); r != keepOn {
			return r == stopNow
		}
	}
}

// watchHalfOpen is toUnix once the peer has finished sending while the program has not: a
// reset of the half-open connection (Linux's reset in CLOSE_WAIT) stops the proxy at once,
// so that the program sees the hang-up now and EPIPE at its next write, as on Linux, rather
// than only when it writes. It finishes when the proxy stops or the program has finished
// too, and parks like the copy (a pooled connection that the server closed can sit half-open
// for long).
func (sp *splice) watchHalfOpen() bool {
	for {
		if sp.e.ep.Readiness(waiter.EventHUp)&waiter.EventHUp != 0 { // (it adds EventRdHUp unasked)
			// A hang-up that follows stop is the proxy's own close (the program closed its
			// end), not the peer's reset. Looked at after the hang-up, which the close
			// precedes.
			if sp.isStopping() {
				return true
			}
			sp.mu.Lock()
			finished := sp.netDone
			sp.mu.Unlock()
			if !finished {
				sp.stop(true, syscall.EPIPE)
			}
			return true
		}
		if ret, finished := sp.awaitUnix(&sp.hupWake); ret {
			return finished
		}
	}
}

// hungUp reports whether the program closed its end of the socket (not only shut it down
// for writing).
func (sp *splice) hungUp() bool {
	hup := false
	sp.conn.rc.Control(func(fd uintptr) { hup = pollHUP(fd) })
	return hup
}

// pollHUP reports whether the socket fd has hung up: both directions shut, as the peer's
// close leaves an AF_UNIX stream socket.
func pollHUP(fd uintptr) bool {
	return rawPoll0(fd, unix.POLLOUT)&unix.POLLHUP != 0
}

// toUnix copies network → program. It reports whether it has finished: false when it parked
// (park.go), and a wake-up runs it again.
func (sp *splice) toUnix() bool {
	if sp.isStopping() { // resumed by stop
		return true
	}
	if sp.halfOpen {
		return sp.watchHalfOpen()
	}
	ep := sp.e.ep
	for {
		buf := spliceBufs.Get().(*[spliceBufSize]byte)
		sp.w = fillWriter{b: buf[:]}
		_, rerr := ep.Read(&sp.w, tcpip.ReadOptions{})
		switch rerr.(type) {
		case nil:
			ep.ModerateRecvBuf(sp.w.n)
			werr := sp.writeUnix(buf[:sp.w.n])
			spliceBufs.Put(buf)
			if werr == unix.EPIPE && !sp.hungUp() {
				// The program shut down reading (shutdown(SHUT_RD)) and keeps its socket.
				// Linux's TCP goes on taking what the peer sends, so the proxy does too, and
				// drops it, since the program's end takes no more: the connection goes on
				// both ways instead of being reset.
				continue
			}
			if werr != nil {
				// EPIPE: the program closed its socket and the peer sends more. Or stop
				// closed the socket.
				sp.stop(true, 0)
				return true
			}
			continue
		case *tcpip.ErrWouldBlock:
			spliceBufs.Put(buf)
			if ret, finished := sp.awaitUnix(&sp.unixWake); ret {
				return finished
			}
			continue
		case *tcpip.ErrClosedForReceive:
			spliceBufs.Put(buf)
			sp.conn.CloseWrite()
			sp.mu.Lock()
			sp.unixDone = true
			both := sp.netDone
			sp.mu.Unlock()
			if both {
				// Both directions are finished: release now (this also ends toNet's wait
				// for hang-up).
				sp.stop(false, 0)
				return true
			}
			sp.halfOpen = true
			return sp.watchHalfOpen()
		default:
			spliceBufs.Put(buf)
			sp.stop(true, errno(rerr))
			return true
		}
	}
}

// stop ends the proxy: the socket is released (both loops return) and the endpoint is
// reset (abort) or closed. cause is kept for Err if it says the connection broke.
func (sp *splice) stop(abort bool, cause syscall.Errno) {
	sp.mu.Lock()
	if connectionError(cause) && (sp.err == nil || sp.err == syscall.EPIPE) {
		// Kept even when the other direction stopped first: both see the broken
		// connection, and which of them reports it first is a race. A reset shows to one
		// direction as ECONNRESET and to the other as EPIPE: keep the precise one.
		sp.err = cause
	}
	if sp.stopped {
		sp.mu.Unlock()
		return
	}
	sp.stopped = true
	sp.resetting = abort && breaksProgram(cause) && sp.e.progEnd != nil
	sp.mu.Unlock()
	sp.stopLoops()
	if sp.resetting {
		// Not shut down: the program must not read end of file before release resets it.
		sp.conn.SetDeadline(time.Unix(1, 0))
	} else {
		sp.conn.release()
	}
	if abort {
		sp.e.once.Do(sp.e.ep.Abort)
	} else {
		sp.e.once.Do(sp.e.ep.Close)
	}
}

// shutdown implements proxy: the stack is closing, the connection is reset.
func (sp *splice) shutdown() { sp.stop(true, 0) }

// sweep implements proxy: loops quiet since the last sweep are asked to park.
func (sp *splice) sweep() {
	sp.mu.Lock()
	stopped := sp.stopped
	sp.mu.Unlock()
	if !stopped {
		sp.nudge()
	}
}

// connectionError reports whether e says the connection broke (rather than that it was
// closed, which is what the endpoint reports after the proxy itself closed or reset it).
func connectionError(e syscall.Errno) bool {
	switch e {
	case syscall.EPIPE, // a reset in CLOSE_WAIT, as on Linux
		syscall.ECONNRESET, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN:
		return true
	}
	return false
}

// breaksProgram reports whether e, ending a connection, is the network breaking it, which the
// program learns as a reset (a reset in CLOSE_WAIT, EPIPE, finds it past end of file already).
func breaksProgram(e syscall.Errno) bool { return e != syscall.EPIPE && connectionError(e) }

// release runs when both loops have finished.
func (sp *splice) release() {
	sp.stop(false, 0)
	if sp.resetting {
		sp.resetProgram()
	}
	sp.e.once.Do(sp.e.ep.Close)
}

// resetProgram closes the socket so that the program, once it has read what arrived, fails
// its next read with ECONNRESET rather than reading end of file. af_unix reports that to a
// stream socket whose peer is closed with data still unread in the peer's queue, so the
// proxy first writes a byte into its own queue through a copy of the program's end. Nothing
// reads the socket any more (both loops have finished). If the program's end cannot be
// found, or it no longer writes (shut down), the program reads end of file; if its send
// buffer is full, the queue is not empty anyway.
func (sp *splice) resetProgram() {
	if fd := sp.e.progEnd.CopyFD(); fd >= 0 {
		err := unix.Sendto(fd, []byte{0}, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil)
		unix.Close(fd)
		if err == nil || err == unix.EAGAIN {
			sp.mu.Lock()
			sp.programReset = true
			sp.mu.Unlock()
		}
	}
	sp.conn.Close()
}

// writeUnix writes all of b to the socket, waiting in the poller while it is full.
func (sp *splice) writeUnix(b []byte) error {
	sp.wdata, sp.werr = b, 0
	if err := sp.conn.rc.Write(sp.writeFn); err != nil {
		return err
	}
	if sp.werr != 0 {
		return sp.werr
	}
	return nil
}

// writeSome is the body of writeUnix, a method value made once.
func (sp *splice) writeSome(fd uintptr) bool {
	for len(sp.wdata) > 0 {
		n, errno := rawWrite(fd, sp.wdata)
		switch errno {
		case 0:
			sp.wdata = sp.wdata[n:]
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			sp.werr = errno
			return true
		}
	}
	return true
}

// fillWriter collects what Endpoint.Read hands it into a fixed buffer; a short write tells
// Read to stop, and Read consumes exactly what was taken.
type fillWriter struct {
	b []byte
	n int
}

func (w *fillWriter) Write(p []byte) (int, error) {
	n := copy(w.b[w.n:], p)
	w.n += n
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}
