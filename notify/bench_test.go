package notify

import (
	"strings"
	"testing"
)

// BenchmarkRoundTrip measures a trapped call answered at once: the floor every emulated call
// pays (two context switches plus receive and send).
func BenchmarkRoundTrip(b *testing.B) {
	r := runChild(b, "loop", func(l *Listener, n *Notification) { l.Return(n.ID, 0) })
	if !strings.Contains(r.out, "ns/call") {
		b.Fatalf("child output %q", r.out)
	}
	b.Log(strings.TrimSpace(r.out))
}
