package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The garbage collector of a program-wrapping ztnc-run gets a fixed amount of extra room,
// gcHeadroom, instead of room proportional to the live heap: GOGC goes up to gcPercentMax
// while the live heap is small and back down to Go's default (100) as it grows past
// gcHeadroom. Every connection allocates the stack's endpoint, timers and proxy state, and
// every packet its buffers, so with Go's default a member handling a few MB of live heap runs
// a collection every few tens of milliseconds under a connection-per-request load. Measured
// on 2 CPUs (docs/benchmarks.md, HTTP new connection -c32): the client's member collected 26
// times in 6 s instead of ~100, and the pair used ~6% less CPU per request.
//
// The memory cost is bounded: the heap may grow to live + max(live, min(4 × live,
// gcHeadroom)), i.e. at most gcHeadroom more than with Go's default, and nothing more
// once the live heap exceeds gcHeadroom. GOGC in the environment turns the tuning off;
// GOMEMLIMIT, if set, bounds the heap as usual. The program's own environment is unchanged.
//
// The room is given back when the member falls idle (idleReleaser). Under a cgroup memory
// limit (a container's) the headroom is at most an eighth of it (memlimit.go).
const (
	gcHeadroom   = 64 << 20
	gcPercentMax = 400
	gcPercentMin = 100
)

// tuneGC starts the tuning unless GOGC is set. It returns the headroom chosen (0: none) and
// the cgroup memory limit that bounded it (0: none).
func tuneGC() (headroom, limit uint64) {
	if os.Getenv("GOGC") != "" {
		return 0, 0
	}
	headroom, limit = gcHeadroom, cgroupMemoryLimit("/")
	if limit > 0 {
		headroom = min(headroom, limit/limitShare)
	}
	t := &gcTuner{samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, percent: gcPercentMin, headroom: headroom}
	t.adjust()
	t.arm()
	go newIdleReleaser().run()
	return headroom, limit
}

// gcTuner sets GOGC after each collection from the live heap it left.
type gcTuner struct {
	samples  []metrics.Sample
	percent  int
	headroom uint64
}

// gcSentinel is an object the tuner drops at once: its finalizer runs after the collection
// that frees it, and arms a new one.
type gcSentinel struct {
	t *gcTuner
	_ [16]byte // not a tiny allocation, whose finalizer could wait for its neighbours
}

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{t: t}, func(s *gcSentinel) {
		s.t.adjust()
		s.t.arm()
	})
}

func (t *gcTuner) adjust() {
	metrics.Read(t.samples)
	if t.samples[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if p := gcPercent(t.samples[0].Value.Uint64(), t.headroom); p != t.percent {
		t.percent = p
		debug.SetGCPercent(p)
	}
}

// gcPercent is the GOGC that gives a live heap of live bytes headroom to grow into, within
// [gcPercentMin, gcPercentMax]. It moves in steps of 25 so that small changes of the live
// heap do not reset the GC's pacing at every collection.
func gcPercent(live, headroom uint64) int {
	if live == 0 {
		return gcPercentMax
	}
	p := min(headroom*100/live, gcPercentMax)
	return max(int(p)/25*25, gcPercentMin)
}

// When a member falls idle after a busy spell, the heap it was let grow into stays mapped: with
// nothing allocated no collection runs until the runtime forces one after two minutes, and the
// scavenger returns only what exceeds the goal that collection sets. After 70 s of nginx
// serving new connections, its member stayed at 116 MB of RSS for two minutes, at 67 MB for
// two more, then 34 MB. So every idleCheck the releaser looks whether the member was quiet
// since its last look — no collection, less than idleAlloc allocated — and if so, and the
// heap holds more than idleSlack beyond the live heap, it collects and returns the free memory
// at once (debug.FreeOSMemory). A member doing any real work is never stopped for this.
const (
	idleCheck = 10 * time.Second
	idleAlloc = 4 << 20
	idleSlack = 16 << 20
)

type idleReleaser struct {
	samples []metrics.Sample
	last    heapLook
}

// heapLook is what the releaser reads of the runtime: collections and bytes allocated so far,
// the live heap and the heap held (objects, dead or alive, and free or unused heap memory not
// yet returned).
type heapLook struct {
	cycles, allocated, live, held uint64
}

// worthReleasing: quiet since the last look, and more than idleSlack to give back.
func (h heapLook) worthReleasing(last heapLook) bool {
	quiet := h.cycles == last.cycles && h.allocated-last.allocated < idleAlloc
	return quiet && h.held > h.live+idleSlack
}

func newIdleReleaser() *idleReleaser {
	r := &idleReleaser{samples: []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}}
	r.last, _ = r.read()
	return r
}

func (r *idleReleaser) run() {
	for range time.Tick(idleCheck) {
		r.step()
	}
}

// read looks at the heap; ok is false if the runtime lacks a metric.
func (r *idleReleaser) read() (h heapLook, ok bool) {
	metrics.Read(r.samples)
	for _, s := range r.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return h, false
		}
	}
	v := func(i int) uint64 { return r.samples[i].Value.Uint64() }
	return heapLook{cycles: v(0), allocated: v(1), live: v(2), held: v(3) + v(4) + v(5)}, true
}

// step takes one look and reports whether it gave memory back.
func (r *idleReleaser) step() bool {
	now, ok := r.read()
	if !ok {
		return false
	}
	release := now.worthReleasing(r.last)
	r.last = now
	if !release {
		return false
	}
	debug.FreeOSMemory()
	r.last, _ = r.read()
	return true
}
