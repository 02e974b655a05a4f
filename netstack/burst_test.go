package netstack

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// burstPort is one end of a point-to-point link that behaves like the ZeroTier engine: a
// BatchPort and a BurstPort that delivers from a goroutine of its own, in bursts of whatever
// queued up since the last one.
type burstPort struct {
	mac  [6]byte
	peer *burstPort

	mu      sync.Mutex
	cond    *sync.Cond
	inbox   [][]byte // whole frames waiting for delivery
	closed  bool
	recvMu  sync.Mutex
	recv    func(dst, src [6]byte, etherType uint16, payload []byte)
	end     func()
	bursts  int
	largest int
}

var (
	_ BatchPort = (*burstPort)(nil)
	_ BurstPort = (*burstPort)(nil)
)

// newBurstPair returns two connected ports, stopped at t's cleanup.
func newBurstPair(t testing.TB) (*burstPort, *burstPort) {
	a, b := &burstPort{mac: testMAC(1)}, &burstPort{mac: testMAC(2)}
	a.peer, b.peer = b, a
	for _, p := range []*burstPort{a, b} {
		p.cond = sync.NewCond(&p.mu)
		go p.run()
	}
	t.Cleanup(func() { a.close(); b.close() })
	return a, b
}

func (p *burstPort) run() {
	for {
		p.mu.Lock()
		for len(p.inbox) == 0 && !p.closed {
			p.cond.Wait()
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		burst := p.inbox
		p.inbox = nil
		p.mu.Unlock()
		p.recvMu.Lock()
		if p.recv != nil {
			for _, f := range burst {
				p.recv([6]byte(f[0:6]), [6]byte(f[6:12]), etherType(f), f[ethHeaderLen:])
			}
		}
		if p.end != nil {
			p.end()
		}
		p.bursts++
		p.largest = max(p.largest, len(burst))
		p.recvMu.Unlock()
	}
}

func (p *burstPort) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *burstPort) MAC() [6]byte                        { return p.mac }
func (p *burstPort) MTU() int                            { return testMTU }
func (p *burstPort) Subscribe(group [6]byte, _ uint32)   {}
func (p *burstPort) Unsubscribe(group [6]byte, _ uint32) {}

func (p *burstPort) SetReceiver(fn func(dst, src [6]byte, etherType uint16, payload []byte)) {
	p.recvMu.Lock()
	p.recv = fn
	p.recvMu.Unlock()
}

func (p *burstPort) SetBurstEnd(fn func()) {
	p.recvMu.Lock()
	p.end = fn
	p.recvMu.Unlock()
}

func (p *burstPort) WriteFrame(dst, src [6]byte, etherType uint16, payload []byte) error {
	f := make([]byte, ethHeaderLen+len(payload))
	copy(f, dst[:])
	copy(f[6:], src[:])
	f[12], f[13] = byte(etherType>>8), byte(etherType)
	copy(f[ethHeaderLen:], payload)
	return p.WriteFrames([][]byte{f})
}

func (p *burstPort) WriteFrames(frames [][]byte) error {
	q := p.peer
	q.mu.Lock()
	for _, f := range frames {
		q.inbox = append(q.inbox, bytes.Clone(f))
	}
	q.cond.Signal()
	q.mu.Unlock()
	return nil
}

// newBurstNet is newNet on a burst link instead of a hub.
func newBurstNet(t testing.TB, cfg Config) (*testNet, *burstPort, *burstPort) {
	t.Helper()
	pa, pb := newBurstPair(t)
	n := &testNet{}
	for _, s := range []struct {
		st   **Stack
		port Port
		addr []netip.Prefix
	}{{&n.a, pa, []netip.Prefix{addrA4, addrA6}}, {&n.b, pb, []netip.Prefix{addrB4, addrB6}}} {
		st, err := New(s.port, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.SetAddresses(s.addr); err != nil {
			t.Fatal(err)
		}
		*s.st = st
	}
	return n, pa, pb
}

// TestBurstPortTransfer moves data both ways over a link that takes batches and delivers in
// bursts, so that the link cuts the stack's large segments (GSO) and coalesces what arrives
// (GRO): every byte arrives, in order, over IPv4 and IPv6, and bursts did coalesce frames.
func TestBurstPortTransfer(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		n, pa, pb := newBurstNet(t, Config{})
		port := uint16(80)
		if v6 {
			port = 81
		}
		client, server, _, _ := n.splicedPair(t, v6, port)
		data := make([]byte, 8<<20)
		for i := range data {
			data[i] = byte(rand.IntN(256))
		}
		want := sha256.Sum256(data)
		echoed := make(chan [32]byte)
		go func() { // server: echo everything back
			io.Copy(server, server)
			server.CloseWrite()
		}()
		go func() {
			h := sha256.New()
			io.Copy(h, client)
			echoed <- [32]byte(h.Sum(nil))
		}()
		go func() {
			client.Write(data)
			client.CloseWrite()
		}()
		var got [32]byte
		select {
		case got = <-echoed:
		case <-time.After(20 * time.Second):
			t.Fatalf("v6=%v: stalled; A %+v B %+v; A stats %+v", v6, n.a.Counters(), n.b.Counters(), n.a.st.Stats().IP)
		}
		if got != want {
			t.Fatalf("v6=%v: echoed data differs", v6)
		}
		// GRO: TCP saw fewer segments than frames arrived.
		if segs, frames := n.b.st.Stats().TCP.ValidSegmentsReceived.Value(), n.b.Counters().FramesIn; segs*2 > frames {
			t.Errorf("v6=%v: %d frames in, %d TCP segments: GRO did not coalesce", v6, frames, segs)
		}
		pa.recvMu.Lock()
		pb.recvMu.Lock()
		t.Logf("v6=%v: bursts %d/%d, largest %d/%d frames; stack A %+v", v6, pa.bursts, pb.bursts, pa.largest, pb.largest, n.a.Counters())
		pb.recvMu.Unlock()
		pa.recvMu.Unlock()
	}
}
