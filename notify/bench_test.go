package notify

import (
	"strconv"
	"strings"
	"testing"
)

// BenchmarkRoundTrip measures a trapped call answered at once: the floor every emulated call
// pays (the switch to the supervisor and back, receive and answer). The child makes b.N calls;
// ns/call excludes its start-up.
func BenchmarkRoundTrip(b *testing.B) {
	b.Setenv("ZTNC_NOTIFY_LOOPS", strconv.Itoa(b.N))
	r := runChild(b, "loop", func(l *Listener, n *Notification) { l.Return(n.ID, 0) })
	f := strings.Fields(r.out)
	if len(f) != 2 || f[1] != "ns/call" {
		b.Fatalf("child output %q", r.out)
	}
	ns, _ := strconv.ParseFloat(f[0], 64)
	b.ReportMetric(ns, "ns/call")
}
