package netstack

import (
	"sync/atomic"
	"time"
)

// The goroutines of spliced connections are reused. A connection's loops run deep in gVisor's
// call chains, so a fresh goroutine grows its stack several times (each growth a copy) in its
// first packets; with a connection per request that was a seventh of the proxy's CPU time.
// Finished loops wait a while for the next connection's, keeping their grown stacks; at
// most maxIdleWorkers wait, so a burst of closed connections does not pin memory.
const (
	maxIdleWorkers = 64
	workerIdle     = 10 * time.Second
)

var workers = workerPool{jobs: make(chan func())}

type workerPool struct {
	jobs chan func()
	idle atomic.Int32
}

// run runs fn on an idle worker, or on a new goroutine.
func (p *workerPool) run(fn func()) {
	select {
	case p.jobs <- fn:
	default:
		go p.work(fn)
	}
}

func (p *workerPool) work(fn func()) {
	var t *time.Timer // one per worker: Reset does not allocate
	for {
		fn()
		fn = nil // let what it referenced go while waiting
		if p.idle.Add(1) > maxIdleWorkers {
			p.idle.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(workerIdle)
		} else {
			t.Reset(workerIdle) // stopped, and since Go 1.23 no stale tick can be received
		}
		select {
		case fn = <-p.jobs:
			t.Stop()
			p.idle.Add(-1)
		case <-t.C:
			p.idle.Add(-1)
			return
		}
	}
}

// Go runs fn on a pooled goroutine, as the proxies' loops run: for short work per connection
// whose call chains run deep (the supervisor completing a connect splices it), so that it
// does not grow a fresh goroutine's stack each time. fn must not wait long: an idle worker
// is what makes the next call cheap.
func Go(fn func()) { workers.run(fn) }
