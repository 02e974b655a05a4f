package netstack

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

func TestTimeWaitFor(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		want time.Duration
	}{
		{0, timeWait},
		{1, timeWait},
		{500, timeWait}, // 16.4 s: the default holds below ~550 connections/s
		{1000, 8 * time.Second},
		{2000, 4 * time.Second},
		{7000, twMin},
		{1e9, twMin},
	} {
		if got := timeWaitFor(tc.rate); got != tc.want {
			t.Errorf("timeWaitFor(%v) = %v, want %v", tc.rate, got, tc.want)
		}
	}
}

// TestTimeWaitGovernor: a burst of ended connections shortens the stack's TIME_WAIT, a calm
// window restores it.
func TestTimeWaitGovernor(t *testing.T) {
	n := newNet(t)
	g := n.a.timeWait
	stackTW := func() time.Duration {
		var opt tcpip.TCPTimeWaitTimeoutOption
		if err := n.a.st.TransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
			t.Fatal(err)
		}
		return time.Duration(opt)
	}
	if got := stackTW(); got != timeWait {
		t.Fatalf("initial TIME_WAIT %v, want %v", got, timeWait)
	}
	now := g.start
	for i := range 2000 {
		g.ended(now.Add(time.Duration(i) * time.Second / 2000))
	}
	g.ended(now.Add(time.Second)) // closes the window: ~2,000 connections/s
	if got := stackTW(); got != 4*time.Second {
		t.Fatalf("TIME_WAIT after 2,000 connections/s: %v, want 4s", got)
	}
	g.ended(now.Add(10 * time.Second)) // one in 9 s
	if got := stackTW(); got != timeWait {
		t.Fatalf("TIME_WAIT after a calm window: %v, want %v", got, timeWait)
	}
}
