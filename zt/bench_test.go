package zt

import (
	"context"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// BenchmarkFrames measures Ethernet frames between two in-process nodes of a private network
// over loopback UDP, on their direct path: WriteFrame on one, delivery on the other (armor
// with AES-GMAC-SIV, fragmentation above 1432 bytes, membership check, rules). Reported:
// frames/s and Gbit/s delivered, and the share lost (UDP has no backpressure; the kernel
// drops what the receiver cannot take).
//
//	go test -run '^$' -bench Frames -benchtime 200000x ./zt/
func BenchmarkFrames(b *testing.B) {
	for _, mode := range []string{"offload", "batched", "single"} {
		for _, size := range []int{1400, 2800} {
			b.Run(mode+"/"+strconv.Itoa(size), func(b *testing.B) {
				defer func(batch, offload bool) { batchIO, offloadIO = batch, offload }(batchIO, offloadIO)
				batchIO = batchIO && mode != "single"
				offloadIO = offloadIO && mode == "offload"
				benchmarkFrames(b, size)
			})
		}
	}
}

func benchmarkFrames(b *testing.B, size int) {
	s := newTwoMembersB(b)
	var got atomic.Int64
	s.nwB.SetReceiver(func(dst, src [6]byte, et uint16, p []byte) {
		if len(p) == size {
			got.Add(1)
		}
	})
	payload := make([]byte, size)
	macA, macB := s.nwA.MAC(), s.nwB.MAC()
	// Warm up until frames arrive on the direct path.
	waitFor(b, "a direct path", 10*time.Second, func() bool { return hasDirectPath(s.a, s.b) })
	for got.Load() == 0 {
		s.nwA.WriteFrame(macB, macA, ztaddr.EtherTypeIPv4, payload)
		time.Sleep(time.Millisecond)
	}
	got.Store(0)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N {
		s.nwA.WriteFrame(macB, macA, ztaddr.EtherTypeIPv4, payload)
	}
	// Wait for stragglers: until all arrived or nothing arrives for 100 ms.
	for last := int64(-1); got.Load() != int64(b.N) && got.Load() != last; {
		last = got.Load()
		time.Sleep(100 * time.Millisecond)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	n := float64(got.Load())
	// CPU time (both nodes, user + system) per delivered frame: steadier than wall-clock
	// rates on a shared machine.
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/frame")
	b.ReportMetric(n/elapsed.Seconds(), "frames/s")
	b.ReportMetric(n*float64(size)*8/elapsed.Seconds()/1e9, "Gbit/s")
	b.ReportMetric(100*(1-n/float64(b.N)), "%lost")
}

// newTwoMembersB is newTwoMembers for benchmarks, quiet.
func newTwoMembersB(b *testing.B) *twoMembers {
	l := newLab(b)
	s := &twoMembers{lab: l}
	ctl := newTestController(l.leaf(1), 1)
	ctl.mtu = netconf.DefaultMTU
	s.ctl = ctl
	s.a, s.b = l.leaf(2), l.leaf(3)
	ctl.authorize(s.a.Address(), "10.147.17.2")
	ctl.authorize(s.b.Address(), "10.147.17.3")
	s.nwA, _ = s.a.Join(ctl.nwid)
	s.nwB, _ = s.b.Join(ctl.nwid)
	waitStatus(b, s.nwA, StatusOK)
	waitStatus(b, s.nwB, StatusOK)
	// Introduce them: one frame each way through the root, then RENDEZVOUS.
	s.nwA.WriteFrame(s.nwB.MAC(), s.nwA.MAC(), ztaddr.EtherTypeIPv4, []byte{0})
	s.nwB.WriteFrame(s.nwA.MAC(), s.nwB.MAC(), ztaddr.EtherTypeIPv4, []byte{0})
	return s
}

// BenchmarkLoopbackUDP is the ceiling BenchmarkFrames runs against: one goroutine sending
// datagrams of the frame size over loopback, another receiving them, no ZeroTier.
func BenchmarkLoopbackUDP(b *testing.B) {
	for _, size := range []int{1400, 2800} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			var got atomic.Int64
			tx, rx := loopbackSockets(b, func(k int, _ error) { got.Add(int64(k)) })
			payload := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				tx.writeTo(payload, rx.local)
			}
			for last := int64(-1); got.Load() != int64(b.N) && got.Load() != last; {
				last = got.Load()
				time.Sleep(100 * time.Millisecond)
			}
			elapsed := time.Since(start)
			n := float64(got.Load())
			b.ReportMetric(n/elapsed.Seconds(), "frames/s")
			b.ReportMetric(n*float64(size)*8/elapsed.Seconds()/1e9, "Gbit/s")
			b.ReportMetric(100*(1-n/float64(b.N)), "%lost")
		})
	}
}

// BenchmarkSendBatch measures what sending a datagram costs the sender, alone and in batches
// of one sendmmsg as the switch sends them (txBatch; equal datagrams to one peer go out as one
// GSO message): 900-byte datagrams, a keep-alive response's, over loopback to a receiver that
// drains them. ns/op is per datagram. Links send each of gVisor's segments at once, one batch
// per segment; the difference between the sizes is what a transmit queue shared by
// connections could save per datagram (docs/benchmarks.md).
func BenchmarkSendBatch(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			tx, rx := loopbackSockets(b, func(int, error) {})
			batch := getTxBatch(tx)
			defer batch.release()
			p := make(wire.Packet, 900)
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				for k := 0; k < n && sent < b.N; k++ {
					if err := batch.add(p, physicalMTU, 1, rx.local); err != nil {
						b.Fatal(err)
					}
					sent++
				}
				if err := batch.flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// loopbackSockets opens two node sockets on loopback, tx and rx, closed when b ends; rx's
// receive loop runs, reporting each batch it reads to got.
func loopbackSockets(b *testing.B, got func(int, error)) (tx, rx *socket) {
	for _, s := range []**socket{&tx, &rx} {
		socks, err := listen([]netip.Addr{netip.MustParseAddr("127.0.0.1")}, PortAny, 0)
		if err != nil {
			b.Fatal(err)
		}
		*s = socks[0]
		b.Cleanup(func() { socks[0].conn.Close() })
	}
	go rx.readLoop(newBatchReader(rx), got)
	return tx, rx
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkJoin measures a node restarting with nothing cached but its identity (a fresh home
// each time, same UDP port as nodes keep theirs) from NewNode to its network being ready, with
// an in-process root and controller on loopback: HELLO to the root, WHOIS of the controller,
// NETWORK_CONFIG_REQUEST, signed config. (Heavy per iteration: use -benchtime 50x.)
func BenchmarkJoin(b *testing.B) {
	l := newLab(b)
	ctl := newTestController(l.leaf(1), 1)
	id := l.ids[2]
	ctl.authorize(id.Address(), "10.147.17.2")
	port := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		home := homeWith(b, id)
		b.StartTimer()
		n := l.node(home, func(c *Config) {
			c.Logger = discardLogger()
			if port != 0 {
				c.Port = port
			}
		})
		port = n.Port()
		n.t = defaultTiming
		n.Start()
		nw, err := n.Join(ctl.nwid)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = nw.WaitReady(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		n.Close()
		b.StartTimer()
	}
}
