package netstack

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/ztnc/ztnc/internal/epoll"
)

// Parking. A spliced socket runs two loops (splice.go for TCP, dgram_splice.go for UDP and
// ICMP), each on a goroutine while it runs. A socket whose program and peer are both quiet —
// a pooled database connection, a websocket, an SSH session at a prompt, a resolver's UDP
// socket — would hold both goroutines, and their stacks, grown deep in gVisor's call chains,
// are half of what an idle connection costs. So a loop that has waited for input since the
// last sweep (every parkAfter) parks: it arranges to be woken and returns its goroutine to
// the pool. toNet's socket goes into the stack's epoll set (one goroutine for all parked
// sockets), for input or, once the program has shut down writing, for its close; toUnix's
// endpoint calls back through gVisor's waiter queue, and so does toNet's when it waits for
// room to write (a peer that does not read). A wake-up runs the loop again on a pooled
// worker.
//
// A loop that waits for less than a sweep never parks: a busy connection keeps the direct
// wake-ups of its goroutines (the runtime's poller, the endpoint's channel).
//
// A loop woken after a park of a whole sweep or more is cold: the connection carries a
// message now and then (a query on a pooled connection, a websocket's heartbeat). It parks
// again as soon as it would wait, instead of holding a goroutine for another sweep. So when
// thousands of parked connections wake at once, each loop holds a worker only while it
// copies, and the pool's workers serve them in turn instead of a fresh goroutine (and its
// stack) each. A loop woken sooner than that is busy again and waits on its goroutine.
//
// A stack whose loops on goroutines (running, or waiting on one) number more than
// crowdedLoops is crowded: its loops start cold and are cold at every wake-up, whatever the
// length of their park. A burst of connections — clients that all reconnect at once after a
// restart — would otherwise hold two goroutines per connection until a sweep or two parked
// them, ~20 KB each, and take a container past its memory limit; crowded, loops park as
// soon as they would wait, at the price of a park and a wake-up per message. The busy
// connections of a stack that is not crowded keep their goroutines.

// parkAfter is the sweep interval: a loop parks after waiting between one and two of them.
var parkAfter = 5 * time.Second

// crowdedLoops is how many loops of a stack may hold a goroutine before its loops park at
// once (~10 MB of stacks).
var crowdedLoops int32 = 1024

// A loop's state.
const (
	loopRunning int32 = iota
	loopParked
)

// loop is one direction's parking state.
type loop struct {
	state    atomic.Int32  // loopRunning or loopParked
	wakes    atomic.Uint32 // the loop's wake-ups: a sweep parks a loop that had none since the last
	seen     uint32        // wakes at the last sweep (the sweep's own)
	parkReq  atomic.Bool   // the sweep asks it to park (a wait on its goroutine looks)
	parkedAt time.Time     // when it last parked: written before, read by the wake-up after
	cold     bool          // woken after a park of parkAfter or more: park at the first wait
}

// quiet reports whether the loop is running and had no wake-up since the last sweep; it
// remembers this sweep's count.
func (l *loop) quiet() bool {
	w := l.wakes.Load()
	q := w == l.seen && l.state.Load() == loopRunning
	l.seen = w
	return q
}

// loops are the two loops of a spliced socket: toNet copies what the program writes to the
// endpoint, toUnix what the endpoint receives to the program. Each runs on a pooled worker
// until it finishes or parks; the second to finish calls finish.
type loops struct {
	s        *Stack
	ep       tcpip.Endpoint
	wq       *waiter.Queue
	conn     unixEnd // the proxy's end of the socketpair
	sfd      int     // conn's descriptor, for the parker's epoll set
	stopping chan struct{}

	toNet, toUnix func() bool // a loop; false when it parked
	finish        func()

	// The endpoint's wake-ups: writable for toNet, readable for toUnix (registered for the
	// socket's life), and the callbacks of parked loops: toNet's for room to write (netArmed
	// while registered), toUnix's for input or (a half-open TCP connection's watch) for a
	// hang-up (unixArmed is the one registered).
	netEntry, unixEntry waiter.Entry
	netReady, unixReady chan struct{}
	netWake             waiter.Entry
	netArmed            bool
	unixWake, hupWake   waiter.Entry
	unixArmed           *waiter.Entry
	netLoop, unixLoop   loop
	netEmpty            bool         // toNet's read found nothing (see emptyRead)
	parkKey             uint64       // in the parker's set (under parker.mu), 0 before toNet first parks
	live                atomic.Int32 // loops that have not finished
}

const (
	netEvents  = waiter.WritableEvents | waiter.EventErr | waiter.EventHUp
	unixEvents = waiter.ReadableEvents | waiter.EventErr | waiter.EventHUp
)

// init sets up the loops of a proxy on conn; start runs them.
func (l *loops) init(s *Stack, ep tcpip.Endpoint, wq *waiter.Queue, conn unixEnd, toNet, toUnix func() bool, finish func()) {
	l.s, l.ep, l.wq, l.conn = s, ep, wq, conn
	l.toNet, l.toUnix, l.finish = toNet, toUnix, finish
	l.stopping = make(chan struct{})
	conn.rc.Control(func(fd uintptr) { l.sfd = int(fd) })
	l.netEntry, l.netReady = waiter.NewChannelEntry(netEvents)
	l.unixEntry, l.unixReady = waiter.NewChannelEntry(unixEvents)
	l.netWake = waiter.NewFunctionEntry(netEvents, func(waiter.EventMask) { l.wakeNet() })
	wake := l.wakeUnix
	l.unixWake = waiter.NewFunctionEntry(unixEvents, wake)
	l.hupWake = waiter.NewFunctionEntry(waiter.EventHUp, wake)
}

func (l *loops) start() {
	l.wq.EventRegister(&l.netEntry)
	l.wq.EventRegister(&l.unixEntry)
	l.live.Store(2)
	cold := l.s.parker.crowded()
	l.netLoop.cold, l.unixLoop.cold = cold, cold
	l.s.parker.running.Add(2)
	workers.run(l.runNet)
	workers.run(l.runUnix)
}

// runNet and runUnix run a loop, from the start or after it parked.
func (l *loops) runNet() {
	if l.toNet() {
		l.loopDone()
	}
}

func (l *loops) runUnix() {
	if l.toUnix() {
		l.loopDone()
	}
}

func (l *loops) loopDone() {
	l.s.parker.running.Add(-1)
	if l.live.Add(-1) != 0 {
		return
	}
	l.wq.EventUnregister(&l.netEntry)
	l.wq.EventUnregister(&l.unixEntry)
	l.finish()
}

func (l *loops) isStopping() bool {
	select {
	case <-l.stopping:
		return true
	default:
		return false
	}
}

// stopLoops begins the end: the loops return, parked ones are run to return. The caller then
// closes or releases the socket (the parker has let go of it).
func (l *loops) stopLoops() {
	close(l.stopping)
	l.s.parker.forget(l)
	l.resumeParked()
}

// readNet waits for input on the program's socket and reads it with read (rc.Read's
// function, which takes what there is and reports EAGAIN through emptyRead). On the way it
// parks toNet when the sweep asks (a read deadline in the past) or when the loop is cold and
// finds nothing. got: read has taken something (data, end of file or an error); else the
// loop returns, finished (stop: its deadline, or its close of the socket) or parked.
func (l *loops) readNet(read func(fd uintptr) bool) (got, finished bool) {
	for {
		l.netEmpty = false
		if err := l.conn.rc.Read(read); err == nil && !l.netEmpty {
			return true, false
		}
		if l.isStopping() {
			return false, true
		}
		if r := l.parkNet(); r != keepOn {
			return false, r == stopNow
		}
	}
}

// emptyRead is what read tells rc.Read when the socket has nothing: wait in the poller
// (false), or, for a cold loop, return to park at once.
func (l *loops) emptyRead() bool {
	l.netEmpty = l.netLoop.cold
	return l.netEmpty
}

// What park tells a loop to do.
type parkResult int

const (
	parkedOff parkResult = iota // return the goroutine: a wake-up runs the loop again
	keepOn                      // go on waiting on the goroutine (could not park)
	stopNow                     // stop has begun: return as done
)

// park parks lp. arm arranges the wake-up and reports whether the loop may sleep (false: it
// could not be arranged, or input is there already); disarm undoes what arm did when the
// loop goes on instead. A wake-up may run the loop again as soon as arm has run, so after
// that only the loop's state is touched.
func (l *loops) park(lp *loop, arm func() bool, disarm func()) parkResult {
	lp.parkedAt = time.Now()
	lp.state.Store(loopParked)
	l.s.parker.running.Add(-1)
	sleep := arm()
	if sleep && !l.isStopping() {
		l.s.stats.parks.Add(1)
		return parkedOff // stop, if it comes now, finds the loop parked and resumes it
	}
	if !l.claim(lp) {
		return parkedOff // a wake-up or stop claimed it: the loop runs again there
	}
	if disarm != nil {
		disarm()
	}
	if l.isStopping() {
		return stopNow
	}
	// Input is there, or the parker cannot take the socket: wait on the goroutine from here
	// (a cold loop would otherwise try again at once, and again).
	lp.cold = false
	return keepOn
}

// parkNet parks toNet until the socket is readable (or hangs up).
func (l *loops) parkNet() parkResult { return l.parkNetFor(l.armNet) }

// parkHangUp parks toNet until the program closes its end (TCP, after it shut it down).
func (l *loops) parkHangUp() parkResult { return l.parkNetFor(l.armHangUp) }

func (l *loops) parkNetFor(arm func() bool) parkResult {
	l.conn.SetReadDeadline(time.Time{}) // the sweep's nudge
	l.netLoop.parkReq.Store(false)
	return l.park(&l.netLoop, arm, nil)
}

func (l *loops) armNet() bool    { return l.s.parker.watch(l, readEvents) }
func (l *loops) armHangUp() bool { return l.s.parker.watch(l, hangUpEvents) }

// awaitNet is toNet's wait for room in the endpoint's send buffer (see await). keep runs
// before it parks: the loop's pending data must then outlive its goroutine, and a wake-up
// may run it at once.
func (l *loops) awaitNet(keep func()) (ret, finished bool) {
	return l.await(&l.netLoop, l.netReady, func() parkResult {
		keep()
		l.netLoop.parkReq.Store(false)
		return l.park(&l.netLoop, l.armNetWrite, l.disarmNetWrite)
	})
}

// pending is what toNet read into a pooled buffer and the endpoint has not taken yet. keep
// moves it into a copy of its own before toNet parks, so that a peer that does not read keeps
// only the bytes waiting, not a pooled buffer.
type pending[B any] struct {
	data []byte
	held bool
	buf  *B // data's pooled buffer, or nil once kept
	pool *sync.Pool
}

func (p *pending[B]) set(buf *B, data []byte) { p.buf, p.data, p.held = buf, data, true }

func (p *pending[B]) keep() {
	if p.buf != nil {
		p.data = bytes.Clone(p.data)
		p.pool.Put(p.buf)
		p.buf = nil
	}
}

func (p *pending[B]) drop() {
	if p.buf != nil {
		p.pool.Put(p.buf)
		p.buf = nil
	}
	p.data, p.held = nil, false
}

func (l *loops) armNetWrite() bool {
	l.netArmed = true
	l.wq.EventRegister(&l.netWake)
	return l.ep.Readiness(netEvents)&netEvents == 0
}

func (l *loops) disarmNetWrite() {
	if l.netArmed {
		l.netArmed = false
		l.wq.EventUnregister(&l.netWake)
	}
}

// parkUnix parks toUnix until an event of wake's happens on the endpoint: l.unixWake's
// (readable, or failed) or l.hupWake's.
func (l *loops) parkUnix(wake *waiter.Entry) parkResult {
	l.unixLoop.parkReq.Store(false)
	l.unixArmed = wake
	return l.park(&l.unixLoop, l.armUnix, l.disarmUnix)
}

func (l *loops) armUnix() bool {
	// The mask is read before the entry is registered: from then on a wake-up may run the
	// loop again, and its next park sets unixArmed.
	w := l.unixArmed
	mask := w.Mask()
	l.wq.EventRegister(w)
	return l.ep.Readiness(mask)&mask == 0 // (TCP's adds EventRdHUp unasked)
}

func (l *loops) disarmUnix() { l.wq.EventUnregister(l.unixArmed) }

// awaitUnix is toUnix's wait for an event of wake's (see parkUnix and await).
func (l *loops) awaitUnix(wake *waiter.Entry) (ret, finished bool) {
	return l.await(&l.unixLoop, l.unixReady, func() parkResult { return l.parkUnix(wake) })
}

// await is a loop's wait: on its goroutine until its endpoint signals ready, or parked (by
// park) when the loop is cold or the sweep asks. ret tells the loop to return, and finished
// whether it has finished.
func (l *loops) await(lp *loop, ready chan struct{}, park func() parkResult) (ret, finished bool) {
	if !lp.cold {
		select {
		case <-ready:
		case <-l.stopping:
			return true, true
		}
		lp.wakes.Add(1)
		if !lp.parkReq.Load() {
			return false, false
		}
	}
	switch park() {
	case parkedOff:
		return true, false
	case stopNow:
		return true, true
	}
	return false, false
}

// claim takes a parked loop back to run it: false if it runs already (another wake-up came
// first).
func (l *loops) claim(lp *loop) bool {
	if !lp.state.CompareAndSwap(loopParked, loopRunning) {
		return false
	}
	l.s.parker.running.Add(1)
	return true
}

// resume claims a parked loop for a wake-up.
func (l *loops) resume(lp *loop) bool {
	if !l.claim(lp) {
		return false
	}
	lp.wakes.Add(1)
	lp.cold = time.Since(lp.parkedAt) >= parkAfter || l.s.parker.crowded()
	return true
}

// wakeUnix runs a parked toUnix again. It is the endpoint's callback (called under the
// waiter queue's lock, so it only hands the loop to a worker), and stop's.
func (l *loops) wakeUnix(waiter.EventMask) {
	if l.resume(&l.unixLoop) {
		workers.run(l.resumeUnix)
	}
}

func (l *loops) resumeUnix() {
	l.disarmUnix()
	l.runUnix()
}

// wakeNet runs a parked toNet again: its socket became ready, the endpoint has room, or it
// must return. The endpoint's callback calls it under the waiter queue's lock.
func (l *loops) wakeNet() {
	if l.resume(&l.netLoop) {
		workers.run(l.resumeNet)
	}
}

func (l *loops) resumeNet() {
	l.disarmNetWrite()
	l.runNet()
}

// resumeParked runs parked loops again once stop has begun, so that they return.
func (l *loops) resumeParked() {
	l.wakeNet()
	l.wakeUnix(0)
}

// nudge asks the loops that were quiet since the last sweep to park: toNet by a read
// deadline in the past (its waits in the poller, for input or for the program's close,
// return) and through its wake-up channel (its wait for room to write), toUnix through its
// wake-up channel.
func (l *loops) nudge() {
	if l.netLoop.quiet() {
		l.conn.SetReadDeadline(time.Unix(1, 0))
		ask(&l.netLoop, l.netReady)
	}
	if l.unixLoop.quiet() {
		ask(&l.unixLoop, l.unixReady)
	}
}

// ask asks a loop waiting on its goroutine to park.
func ask(lp *loop, ready chan struct{}) {
	lp.parkReq.Store(true)
	select {
	case ready <- struct{}{}:
	default:
	}
}

// parked counts its loops parked now.
func (l *loops) parked() uint64 {
	n := uint64(0)
	for _, lp := range [...]*loop{&l.netLoop, &l.unixLoop} {
		if lp.state.Load() == loopParked {
			n++
		}
	}
	return n
}

// parkedLoops counts the loops parked now.
func (s *Stack) parkedLoops() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for p := range s.running {
		n += p.parked()
	}
	return n
}

// parker is a stack's side of parking: the sweeps, and the epoll set that wakes parked toNet
// loops (made at the first park, with its goroutine).
type parker struct {
	s       *Stack
	timer   *time.Timer  // the next sweep, while connections are spliced
	pending bool         // a sweep is set or running (under s.mu): it sets the next
	running atomic.Int32 // the stack's loops on a goroutine

	mu     sync.Mutex
	set    *epoll.Set
	done   chan struct{} // closed when the set's loop has ended
	broken bool          // the set failed or the stack closed: loops wait on their goroutines
	byKey  map[uint64]*loops
	next   uint64
}

// crowded reports whether the stack's loops park at once (see crowdedLoops).
func (p *parker) crowded() bool { return p.running.Load() > crowdedLoops }

// splicing starts the sweeps if they had stopped (no connection was spliced); s.mu is held.
func (p *parker) splicing() {
	switch {
	case p.pending:
	case p.timer == nil:
		p.timer = time.AfterFunc(parkAfter, p.sweep)
	default:
		p.timer.Reset(parkAfter)
	}
	p.pending = true
}

func (p *parker) sweep() {
	s := p.s
	s.mu.Lock()
	proxies := s.runningLocked()
	s.mu.Unlock()
	for _, p := range proxies {
		p.sweep()
	}
	s.mu.Lock()
	if p.pending = !s.closed && len(s.running) > 0; p.pending {
		p.timer.Reset(parkAfter)
	}
	s.mu.Unlock()
}

// What wakes a parked toNet: readEvents, the socket is readable or the program closed or shut
// down its end; hangUpEvents, the program closed its end (after it shut it down: hang-up and
// errors are always reported).
const (
	readEvents   = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT
	hangUpEvents = unix.EPOLLONESHOT
)

// watch arms l's socket in the set (made now if need be) for events: one event wakes its
// toNet. False if that cannot be done (counted), or stop has begun: stop takes the socket out
// of the set (forget) before it lets it be closed, and the number may then be another socket's.
func (p *parker) watch(l *loops, events uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.isStopping() {
		return false
	}
	if !p.arm(l, events) {
		p.s.stats.parkFailures.Add(1)
		return false
	}
	return true
}

// arm is watch's work; p.mu is held.
func (p *parker) arm(l *loops, events uint32) bool {
	if p.broken {
		return false
	}
	if p.set == nil {
		set, err := epoll.New()
		if err != nil {
			return false
		}
		p.set, p.done, p.byKey = set, make(chan struct{}), map[uint64]*loops{}
		go p.loop(set, p.done)
	}
	if l.parkKey != 0 {
		return p.set.Modify(l.sfd, events, l.parkKey) == nil
	}
	p.next++
	if p.set.Add(l.sfd, events, p.next) != nil {
		return false
	}
	l.parkKey = p.next
	p.byKey[p.next] = l
	return true
}

// forget takes l's socket out of the set; stop calls it, before the socket may be closed.
func (p *parker) forget(l *loops) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.parkKey != 0 {
		delete(p.byKey, l.parkKey)
		p.set.Remove(l.sfd)
	}
}

func (p *parker) loop(set *epoll.Set, done chan struct{}) {
	defer close(done)
	set.Loop(p.wake)
	// Ended by close, or failed: nothing wakes parked loops any more, so run them now; they
	// wait on their goroutines from here on.
	p.mu.Lock()
	p.broken = true
	parked := make([]*loops, 0, len(p.byKey))
	for _, l := range p.byKey {
		parked = append(parked, l)
	}
	p.mu.Unlock()
	for _, l := range parked {
		l.wakeNet()
	}
}

// wake runs the parked toNet whose socket became ready.
func (p *parker) wake(key uint64) {
	p.mu.Lock()
	l := p.byKey[key]
	p.mu.Unlock()
	if l != nil {
		l.wakeNet()
	}
}

// close stops the sweeps and ends the set's goroutine; the stack's connections have stopped.
func (p *parker) close() {
	p.s.mu.Lock()
	if p.timer != nil {
		p.timer.Stop()
	}
	p.s.mu.Unlock()
	p.mu.Lock()
	p.broken = true
	set, done := p.set, p.done
	p.mu.Unlock()
	if set != nil {
		set.Close()
		<-done
	}
}
