package netstack

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/ztnc/ztnc/internal/epoll"
)

// Parking. A spliced connection runs two loops (splice.go), each on a goroutine while it
// runs. A connection whose program and peer are both quiet — a pooled database connection, a
// websocket, an SSH session at a prompt — would hold both goroutines, and their stacks, grown
// deep in gVisor's call chains, are half of what an idle connection costs. So a loop that has
// waited for input since the last sweep (every parkAfter) parks: it arranges to be woken and
// returns its goroutine to the pool. toNet's socket goes into the stack's epoll set (one
// goroutine for all parked sockets); toUnix's endpoint calls back through gVisor's waiter
// queue. A wake-up runs the loop again on a pooled worker.
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

// parkAfter is the sweep interval: a loop parks after waiting between one and two of them.
var parkAfter = 5 * time.Second

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
	parkReq  atomic.Bool   // toUnix only: the sweep asks it to park
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

// resume claims a parked loop for a wake-up: false if it runs already (another wake-up came
// first).
func (l *loop) resume() bool {
	if !l.reclaim() {
		return false
	}
	l.wakes.Add(1)
	l.cold = time.Since(l.parkedAt) >= parkAfter
	return true
}

// reclaim is resume for the loop itself, when it could not park: it stays as cold as it was.
func (l *loop) reclaim() bool { return l.state.CompareAndSwap(loopParked, loopRunning) }

// What park tells a loop to do.
type parkResult int

const (
	parkedOff parkResult = iota // return the goroutine: a wake-up runs the loop again
	keepOn                      // go on waiting on the goroutine (could not park)
	stopNow                     // stop has begun: return as done
)

// park parks l. arm arranges the wake-up and reports whether the loop may sleep (false: it
// could not be arranged, or input is there already); disarm undoes what arm did when the
// loop goes on instead. A wake-up may run the loop again as soon as arm has run, so after
// that only the loop's state is touched.
func (sp *splice) park(l *loop, arm func() bool, disarm func()) parkResult {
	l.parkedAt = time.Now()
	l.state.Store(loopParked)
	sleep := arm()
	if sleep && !sp.isStopping() {
		sp.e.s.stats.parks.Add(1)
		return parkedOff // stop, if it comes now, finds the loop parked and resumes it
	}
	if !l.reclaim() {
		return parkedOff // a wake-up or stop claimed it: the loop runs again there
	}
	if disarm != nil {
		disarm()
	}
	if sp.isStopping() {
		return stopNow
	}
	return keepOn
}

// parkNet parks toNet until the socket is readable (or hangs up).
func (sp *splice) parkNet() parkResult {
	sp.conn.SetReadDeadline(time.Time{}) // the sweep's nudge
	return sp.park(&sp.netLoop, sp.armNet, nil)
}

func (sp *splice) armNet() bool { return sp.e.s.parker.watch(sp) }

// parkUnix parks toUnix until the endpoint is readable (or fails).
func (sp *splice) parkUnix() parkResult {
	sp.unixLoop.parkReq.Store(false)
	return sp.park(&sp.unixLoop, sp.armUnix, sp.disarmUnix)
}

const unixEvents = waiter.ReadableEvents | waiter.EventErr | waiter.EventHUp

func (sp *splice) armUnix() bool {
	sp.e.wq.EventRegister(&sp.unixWake)
	return sp.e.ep.Readiness(unixEvents) == 0
}

func (sp *splice) disarmUnix() { sp.e.wq.EventUnregister(&sp.unixWake) }

// wakeUnix runs a parked toUnix again. It is the endpoint's callback (called under the
// waiter queue's lock, so it only hands the loop to a worker), and stop's.
func (sp *splice) wakeUnix(waiter.EventMask) {
	if sp.unixLoop.resume() {
		workers.run(sp.resumeUnix)
	}
}

func (sp *splice) resumeUnix() {
	sp.disarmUnix()
	sp.runUnix()
}

// wakeNet runs a parked toNet again: its socket became ready, or it must return.
func (sp *splice) wakeNet() {
	if sp.netLoop.resume() {
		workers.run(sp.runNet)
	}
}

// resumeParked runs parked loops again once stop has begun, so that they return.
func (sp *splice) resumeParked() {
	sp.wakeNet()
	sp.wakeUnix(0)
}

// sweep asks the loops that were quiet since the last sweep to park: toNet by a read deadline
// in the past (its wait in the poller returns), toUnix through its wake-up channel.
func (sp *splice) sweep() {
	sp.mu.Lock()
	stopped, netDone, unixDone := sp.stopped, sp.netDone, sp.unixDone
	sp.mu.Unlock()
	if stopped {
		return
	}
	if sp.netLoop.quiet() && !netDone {
		sp.conn.SetReadDeadline(time.Unix(1, 0))
	}
	if sp.unixLoop.quiet() && !unixDone {
		sp.unixLoop.parkReq.Store(true)
		select {
		case sp.unixReady <- struct{}{}:
		default:
		}
	}
}

// parkedLoops counts the loops parked now.
func (s *Stack) parkedLoops() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for r := range s.running {
		if sp, ok := r.(*splice); ok {
			for _, l := range [...]*loop{&sp.netLoop, &sp.unixLoop} {
				if l.state.Load() == loopParked {
					n++
				}
			}
		}
	}
	return n
}

// parker is a stack's side of parking: the sweeps, and the epoll set that wakes parked toNet
// loops (made at the first park, with its goroutine).
type parker struct {
	s       *Stack
	timer   *time.Timer // the next sweep, while connections are spliced
	pending bool        // a sweep is set or running (under s.mu): it sets the next

	mu     sync.Mutex
	set    *epoll.Set
	done   chan struct{} // closed when the set's loop has ended
	broken bool          // the set failed or the stack closed: loops wait on their goroutines
	byKey  map[uint64]*splice
	next   uint64
}

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
	splices := make([]*splice, 0, len(s.running))
	for r := range s.running {
		if sp, ok := r.(*splice); ok {
			splices = append(splices, sp)
		}
	}
	s.mu.Unlock()
	for _, sp := range splices {
		sp.sweep()
	}
	s.mu.Lock()
	if p.pending = !s.closed && len(s.running) > 0; p.pending {
		p.timer.Reset(parkAfter)
	}
	s.mu.Unlock()
}

// parkEvents: readable, or the program closed or shut down its end.
const parkEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// watch arms sp's socket in the set (made now if need be): one event wakes its toNet. False
// if that cannot be done, or stop has begun: stop takes the socket out of the set (forget)
// before it lets it be closed, and the number may then be another socket's.
func (p *parker) watch(sp *splice) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken || sp.isStopping() {
		return false
	}
	if p.set == nil {
		set, err := epoll.New()
		if err != nil {
			return false
		}
		p.set, p.done, p.byKey = set, make(chan struct{}), map[uint64]*splice{}
		go p.loop(set, p.done)
	}
	if sp.parkKey != 0 {
		return p.set.Modify(sp.sfd, parkEvents, sp.parkKey) == nil
	}
	p.next++
	if p.set.Add(sp.sfd, parkEvents, p.next) != nil {
		return false
	}
	sp.parkKey = p.next
	p.byKey[p.next] = sp
	return true
}

// forget takes sp's socket out of the set; stop calls it, before the socket may be closed.
func (p *parker) forget(sp *splice) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sp.parkKey != 0 {
		delete(p.byKey, sp.parkKey)
		p.set.Remove(sp.sfd)
	}
}

func (p *parker) loop(set *epoll.Set, done chan struct{}) {
	defer close(done)
	set.Loop(p.wake)
	// Ended by close, or failed: nothing wakes parked loops any more, so run them now; they
	// wait on their goroutines from here on.
	p.mu.Lock()
	p.broken = true
	parked := make([]*splice, 0, len(p.byKey))
	for _, sp := range p.byKey {
		parked = append(parked, sp)
	}
	p.mu.Unlock()
	for _, sp := range parked {
		sp.wakeNet()
	}
}

// wake runs the parked toNet whose socket became ready.
func (p *parker) wake(key uint64) {
	p.mu.Lock()
	sp := p.byKey[key]
	p.mu.Unlock()
	if sp != nil {
		sp.wakeNet()
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
