package main

import "testing"

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
