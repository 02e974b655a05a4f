package main

import (
	"runtime"
	"testing"
)

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, gcPercentMax},
		{1 << 20, gcPercentMax},  // 64 MiB would be 6400%: capped
		{16 << 20, 400},          // exactly 4 × live
		{20 << 20, 300},          // 320% in steps of 25
		{32 << 20, 200},          // live + 64 MiB
		{60 << 20, 100},          // 106%: the step below
		{64 << 20, gcPercentMin}, // the headroom is the default's
		{1 << 30, gcPercentMin},  // large heaps: Go's default
	} {
		if got := gcPercent(c.live); got != c.want {
			t.Errorf("gcPercent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

func TestIdleReleaser(t *testing.T) {
	r := newIdleReleaser()
	garbage := make([][]byte, 64)
	for i := range garbage {
		garbage[i] = make([]byte, 1<<20)
	}
	runtime.KeepAlive(garbage)
	garbage = nil
	runtime.GC() // the 64 MiB is free now, but the scavenger returns it slowly
	if r.step() {
		t.Fatal("released memory although a collection ran since the last look")
	}
	if !r.step() {
		_, live, held, _ := r.read()
		t.Fatalf("nothing released while idle with %d MiB held beyond %d MiB live", (held-live)>>20, live>>20)
	}
	if _, live, held, _ := r.read(); held > live+idleSlack {
		t.Errorf("after the release %d MiB are still held beyond %d MiB live", (held-live)>>20, live>>20)
	}
	if r.step() {
		t.Error("released again with nothing to give back")
	}
}
