package netstack

import (
	"sync"
	"testing"
	"time"
)

// TestWorkerPool: jobs run, finished workers take later jobs, and no more than
// maxIdleWorkers wait.
func TestWorkerPool(t *testing.T) {
	p := workerPool{jobs: make(chan func())}
	var wg sync.WaitGroup
	n := 3 * maxIdleWorkers
	wg.Add(n)
	// Every job waits until all have started, so that none is handed to a worker that
	// finished one: n goroutines run at once, and more finish than may stay idle.
	start := make(chan struct{})
	for range n {
		p.run(func() { <-start; wg.Done() })
	}
	close(start)
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for p.idle.Load() != maxIdleWorkers && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := p.idle.Load(); got != maxIdleWorkers {
		t.Fatalf("%d idle workers, want %d", got, maxIdleWorkers)
	}
	done := make(chan struct{})
	p.run(func() { close(done) })
	<-done
	if got := p.idle.Load(); got > maxIdleWorkers {
		t.Fatalf("%d idle workers after reuse", got)
	}
}
