package zt

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadLoopDeliversAll sends bursts around the receive vector's size, each after the
// receiver has gone back to waiting: a batch that comes back short must not leave anything
// behind.
func TestReadLoopDeliversAll(t *testing.T) {
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	rxs, err := listen(lo, PortAny, 0)
	if err != nil {
		t.Fatal(err)
	}
	rx := rxs[0]
	txs, err := listen(lo, PortAny, 0)
	if err != nil {
		t.Fatal(err)
	}
	tx := txs[0]
	defer tx.conn.Close()
	var got atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- rx.readLoop(newBatchReader(rx), func(k int, err error) {
			if err == nil {
				got.Add(int64(k))
			}
		})
	}()
	sent := int64(0)
	for _, burst := range []int{1, 2, 31, 32, 33, 67, 1, 1} { // around Linux's vector of 32
		for range burst {
			if err := tx.writeTo([]byte("datagram"), rx.local); err != nil {
				t.Fatal(err)
			}
		}
		sent += int64(burst)
		deadline := time.Now().Add(5 * time.Second)
		for got.Load() != sent {
			if time.Now().After(deadline) {
				t.Fatalf("burst of %d: %d of %d datagrams delivered", burst, got.Load(), sent)
			}
			time.Sleep(time.Millisecond)
		}
	}
	rx.conn.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("readLoop returned no error after close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("readLoop did not return after close")
	}
}
