package netstack

import (
	"testing"
)

func TestZZRequestResponseFrames(t *testing.T) {
	n, _, _ := newBurstNet(t, Config{})
	client, server, _, _ := n.splicedPair(t, false, 80)
	go func() {
		buf := make([]byte, 100)
		for {
			if _, err := server.Read(buf); err != nil {
				return
			}
			server.Write(make([]byte, 600))
		}
	}()
	buf := make([]byte, 1000)
	a0, b0 := n.a.Counters().FramesOut, n.b.Counters().FramesOut
	for range 1000 {
		client.Write(make([]byte, 100))
		got := 0
		for got < 600 {
			k, _ := client.Read(buf)
			got += k
		}
	}
	t.Logf("frames per request: client %v server %v", float64(n.a.Counters().FramesOut-a0)/1000, float64(n.b.Counters().FramesOut-b0)/1000)
}
