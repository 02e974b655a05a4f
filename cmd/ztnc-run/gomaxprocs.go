package main

import (
	"os"
	"runtime"
)

// limitProcs gives the Go scheduler of a program-wrapping ztnc-run half of the CPUs it may
// use (at least one) unless GOMAXPROCS is set in the environment. ztnc-run shares the machine
// with the program it runs, and its work is a chain of short hand-offs (packet → stack → proxy
// → socket): with more processors than that, the runtime wakes idle threads to run each
// readied goroutine, and the wake-ups cost more than the work. Measured on 2 CPUs
// (docs/benchmarks.md, GOMAXPROCS=1 against 2, alternated): ~30% less CPU per GB and per
// request, TCP throughput up to 2×, keep-alive requests/s 1.5×. The program's own
// environment is unchanged.
func limitProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
}
