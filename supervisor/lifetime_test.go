package supervisor

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestSupervisorLeavesNoGoroutines: a service runs a supervisor per attached program, so one
// that has served a program and closed must leave nothing running behind it.
func TestSupervisorLeavesNoGoroutines(t *testing.T) {
	run := func(t *testing.T) {
		out, _ := supervise(t, "identity")
		if !strings.Contains(out, "OK") {
			t.Fatalf("child: %s", out)
		}
	}
	t.Run("warm-up", run) // pools that outlive a supervisor (netstack's workers) fill once
	before := runtime.NumGoroutine()
	for i := range 5 {
		t.Run(fmt.Sprint(i), run)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after 5 supervisors closed, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
