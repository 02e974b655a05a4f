package main

import (
	"runtime"
	"testing"
)

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{0, gcHeadroom, gcPercentMax},
		{1 << 20, gcHeadroom, gcPercentMax},  // 64 MiB would be 6400%: capped
		{16 << 20, gcHeadroom, 400},          // exactly 4 × live
		{20 << 20, gcHeadroom, 300},          // 320% in steps of 25
		{32 << 20, gcHeadroom, 200},          // live + 64 MiB
		{60 << 20, gcHeadroom, 100},          // 106%: the step below
		{64 << 20, gcHeadroom, gcPercentMin}, // the headroom is the default's
		{1 << 30, gcHeadroom, gcPercentMin},  // large heaps: Go's default
		{8 << 20, 16 << 20, 200},             // a 128 MiB container's headroom
		{32 << 20, 16 << 20, gcPercentMin},
	} {
		if got := gcPercent(c.live, c.headroom); got != c.want {
			t.Errorf("gcPercent(%d MiB, %d MiB) = %d, want %d", c.live>>20, c.headroom>>20, got, c.want)
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
		t.Fatal("released memory although the program allocated and collected since the last look")
	}
	if !r.step() {
		h, _ := r.read()
		t.Fatalf("nothing released while idle with %d MiB held beyond %d MiB live", (h.held-h.live)>>20, h.live>>20)
	}
	if h, _ := r.read(); h.held > h.live+idleSlack {
		t.Errorf("after the release %d MiB are still held beyond %d MiB live", (h.held-h.live)>>20, h.live>>20)
	}
	if r.step() {
		t.Error("released again with nothing to give back")
	}
}

func TestWorthReleasing(t *testing.T) {
	last := heapLook{cycles: 7, allocated: 100 << 20, live: 10 << 20, held: 90 << 20}
	for _, c := range []struct {
		name string
		now  heapLook
		want bool
	}{
		{"idle, 80 MiB to give back", heapLook{7, 100 << 20, 10 << 20, 90 << 20}, true},
		{"idle, a little allocated", heapLook{7, 103 << 20, 10 << 20, 93 << 20}, true},
		{"a collection ran", heapLook{8, 100 << 20, 10 << 20, 90 << 20}, false},
		{"busy, no collection yet", heapLook{7, 110 << 20, 10 << 20, 100 << 20}, false},
		{"idle, little to give back", heapLook{7, 100 << 20, 10 << 20, 26 << 20}, false},
	} {
		if got := c.now.worthReleasing(last); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
