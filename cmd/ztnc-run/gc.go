package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
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
const (
	gcHeadroom   = 64 << 20
	gcPercentMax = 400
	gcPercentMin = 100
)

// tuneGC starts the tuning unless GOGC is set.
func tuneGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	t := &gcTuner{samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, percent: gcPercentMin}
	t.adjust()
	t.arm()
}

// gcTuner sets GOGC after each collection from the live heap it left.
type gcTuner struct {
	samples []metrics.Sample
	percent int
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
	if p := gcPercent(t.samples[0].Value.Uint64()); p != t.percent {
		t.percent = p
		debug.SetGCPercent(p)
	}
}

// gcPercent is the GOGC that gives a live heap of live bytes gcHeadroom to grow into, within
// [gcPercentMin, gcPercentMax]. It moves in steps of 25 so that small changes of the live
// heap do not reset the GC's pacing at every collection.
func gcPercent(live uint64) int {
	if live == 0 {
		return gcPercentMax
	}
	p := min(uint64(gcHeadroom)*100/live, gcPercentMax)
	return max(int(p)/25*25, gcPercentMin)
}
