package netstack

import (
	"cmp"
	"io"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// BenchmarkSpliceThroughput measures one TCP stream between two stacks on a hub, with a
// socketpair at both ends as under ztnc-run: program → socketpair → proxy → stack A → hub →
// stack B → proxy → socketpair → program. Reported in Gbit/s of payload.
//
// The variants compare the tuning choices side by side: reno and cubic, and reno with
// gVisor's RACK loss detection turned back on; burst is reno on a link like the ZeroTier
// engine's (a BatchPort and BurstPort: segmentation offload and GRO, no receive queue).
// The 100B variants write 100 bytes at a time, with the stacks' Nagle off (as tuned) and
// on: what the program's small writes cost without Nagle (frames/MB: frames sent by the
// writer's stack per MB of payload).
func BenchmarkSpliceThroughput(b *testing.B) {
	for _, v := range []struct {
		name, cc string
		rack     bool
		burst    bool
		chunk    int
		nagle    bool
	}{
		{name: "reno", cc: "reno"},
		{name: "cubic", cc: "cubic"},
		{name: "reno+rack", cc: "reno", rack: true},
		{name: "burst", cc: "reno", burst: true},
		{name: "burst/100B", cc: "reno", burst: true, chunk: 100},
		{name: "burst/100B+nagle", cc: "reno", burst: true, chunk: 100, nagle: true},
	} {
		b.Run(v.name, func(b *testing.B) {
			n := newNetConfig(b, Config{CongestionControl: v.cc})
			if v.burst {
				n, _, _ = newBurstNet(b, Config{CongestionControl: v.cc})
			}
			var opts []tcpip.SettableTransportProtocolOption
			if v.rack {
				rack := tcpip.TCPRACKLossDetection
				opts = append(opts, &rack)
			}
			if v.nagle {
				nagle := tcpip.TCPDelayEnabled(true)
				opts = append(opts, &nagle)
			}
			for _, s := range []*Stack{n.a, n.b} {
				for _, opt := range opts {
					if err := s.st.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
						b.Fatal(err)
					}
				}
			}
			client, server, _, _ := n.splicedPair(b, false, 80)
			chunk := int64(cmp.Or(v.chunk, 256<<10))
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			done := make(chan int64)
			go func() {
				m, _ := io.Copy(io.Discard, server)
				done <- m
			}()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for range b.N {
				if _, err := client.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			client.CloseWrite()
			got := <-done
			elapsed, cpu := time.Since(start), cpuTime()-cpu0
			b.StopTimer()
			// CPU seconds per GB (both stacks, both proxies, both "programs"): unlike Gbit/s it
			// does not depend on what else runs on the machine.
			b.ReportMetric(cpu.Seconds()/(float64(got)/1e9), "cpu-s/GB")
			if got != int64(b.N)*chunk {
				b.Fatalf("received %d of %d bytes", got, int64(b.N)*chunk)
			}
			b.ReportMetric(float64(got)*8/elapsed.Seconds()/1e9, "Gbit/s")
			c := n.a.Counters()
			b.ReportMetric(float64(c.TCPRetransmits+n.b.Counters().TCPRetransmits), "retrans")
			b.ReportMetric(float64(c.FramesOut)/(float64(got)/1e6), "frames/MB")
			b.ReportMetric(float64(n.b.Counters().DropQueueFull), "rxdrops")
		})
	}
}

// BenchmarkConnect measures connection setup and teardown between two stacks on a hub:
// connect, accept, close both (endpoints only, no proxy), one connection at a time.
func BenchmarkConnect(b *testing.B) {
	n := newNet(b)
	l := listenTCP(b, n.b, ap("192.0.2.2:80"))
	dst := ap("192.0.2.2:80")
	b.ResetTimer()
	for range b.N {
		c, err := n.a.NewTCP(false)
		if err != nil {
			b.Fatal(err)
		}
		connectAndAccept(b, c, l, dst, nil)
	}
}

// BenchmarkSplicedConnection measures a connection's whole life through the proxies, as an
// HTTP request with "Connection: close" lives under ztnc-run: connect, accept, splice both
// endpoints (the proxy's ends non-blocking, as the supervisor makes them), a request and a
// response between the two programs' ends, the server's program closes, then the client's.
// Its allocations are the proxy's and the stacks' per connection.
func BenchmarkSplicedConnection(b *testing.B) {
	n := newNet(b)
	dst := ap("192.0.2.2:80")
	l := listenTCP(b, n.b, dst)
	req, resp, buf := make([]byte, 100), make([]byte, 800), make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		c, err := n.a.NewTCP(false)
		if err != nil {
			b.Fatal(err)
		}
		connectAndAccept(b, c, l, dst, func(s *TCPEndpoint) {
			client, server := splicedProgramEnd(b, c), splicedProgramEnd(b, s)
			writeAll(b, client, req)
			readN(b, server, buf, len(req))
			writeAll(b, server, resp)
			unix.Close(server)
			readN(b, client, buf, len(resp))
			if m, err := unix.Read(client, buf); m != 0 || err != nil {
				b.Fatalf("client read %d, %v; want end of file", m, err)
			}
			unix.Close(client)
			<-s.Done()
			<-c.Done()
		})
	}
	// CPU time (both stacks, both proxies, both programs' calls) per connection: unlike
	// ns/op it does not count the waits between the steps.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// splicedProgramEnd splices ep to a new socketpair (the proxy's end non-blocking) and returns
// the program's end, blocking.
func splicedProgramEnd(b *testing.B, ep *TCPEndpoint) int {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		b.Fatal(err)
	}
	if err := ep.Splice(os.NewFile(uintptr(fds[0]), "proxy")); err != nil {
		b.Fatal(err)
	}
	return fds[1]
}

func writeAll(b *testing.B, fd int, p []byte) {
	for len(p) > 0 {
		m, err := unix.Write(fd, p)
		if err != nil {
			b.Fatal(err)
		}
		p = p[m:]
	}
}

func readN(b *testing.B, fd int, buf []byte, n int) {
	for got := 0; got < n; {
		m, err := unix.Read(fd, buf[:n-got])
		if err != nil || m == 0 {
			b.Fatalf("read after %d of %d bytes: %d, %v", got, n, m, err)
		}
		got += m
	}
}

// connectAndAccept connects c to listener l at dst, accepts, and closes both; use, if not nil,
// takes over the two established endpoints instead.
func connectAndAccept(b *testing.B, c, l *TCPEndpoint, dst netip.AddrPort, use func(s *TCPEndpoint)) {
	if err := c.Connect(dst); err != nil && err.Error() != "operation now in progress" {
		b.Fatal(err)
	}
	waitEvents(b, c, EventOut|EventErr|EventHUp, 5*time.Second)
	if e := c.SoError(); e != 0 {
		b.Fatal(e)
	}
	var s *TCPEndpoint
	for {
		var err error
		if s, err = l.Accept(); err == nil {
			break
		}
		waitEvents(b, l, EventIn, 5*time.Second)
	}
	if use != nil {
		use(s)
		return
	}
	// The server closes first and keeps the TIME_WAIT; the client closes once it has seen
	// the FIN, so its ephemeral port is free again at once (a simultaneous close would hold
	// it in TIME_WAIT too, and ~28,000 ports last a few seconds at this rate).
	s.Close()
	waitEvents(b, c, EventIn|EventHUp, 5*time.Second)
	c.Close()
}

// BenchmarkUDPSplice measures datagrams between two spliced UDP endpoints on a hub: the
// sender's program writes 1,400-byte datagrams into a connected endpoint's socketpair (the
// fast path without headers); the receiver is unconnected and gets them with address
// headers. Reports datagrams/s delivered and the share lost (UDP drops when the receiver
// falls behind, as on Linux).
func BenchmarkUDPSplice(b *testing.B) {
	n := newNet(b)
	srv := newUDP(b, n.b, false, "0.0.0.0:9000")
	srv.SetAddressHeaders(true)
	if err := srv.SetSockOpt(unix.SOL_SOCKET, unix.SO_RCVBUF, intValue(4<<20)); err != nil {
		b.Fatal(err)
	}
	srvProg := seqpacketPair(b, srv)
	cli := newUDP(b, n.a, false, "")
	if err := cli.Connect(ap("192.0.2.2:9000")); err != nil {
		b.Fatal(err)
	}
	cliProg := seqpacketPair(b, cli)
	got := make(chan int)
	go func() {
		rc, _ := srvProg.SyscallConn()
		buf := make([]byte, 2048)
		count := 0
		for {
			srvProg.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				_, rerr = unix.Read(int(fd), buf)
				return rerr != unix.EAGAIN
			})
			if err != nil || rerr != nil {
				got <- count
				return
			}
			count++
		}
	}()
	msg := make([]byte, 1400)
	wc, _ := cliProg.SyscallConn()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var werr error
		wc.Write(func(fd uintptr) bool {
			_, werr = unix.Write(int(fd), msg)
			return werr != unix.EAGAIN
		})
		if werr != nil {
			b.Fatal(werr)
		}
	}
	received := <-got
	elapsed := time.Since(start) - 300*time.Millisecond
	b.StopTimer()
	b.ReportMetric(float64(received)/elapsed.Seconds(), "dgrams/s")
	b.ReportMetric(100*float64(b.N-received)/float64(b.N), "%lost")
	// Where they were lost: the receiving link's queue, or the socket's receive buffer.
	b.ReportMetric(float64(n.b.Counters().DropQueueFull), "rxdrops")
	b.ReportMetric(float64(n.b.st.Stats().UDP.ReceiveBufferErrors.Value()), "rcvbufdrops")
}

// BenchmarkFrame measures the cost and allocations of one frame through the link: "rx" is
// an inbound UDP frame from the port's receive callback to a ReadFrom of the socket, "tx"
// a WriteTo down to the port's WriteFrame.
func BenchmarkFrame(b *testing.B) {
	b.Run("rx", func(b *testing.B) {
		hub := NewHub()
		s, _ := newStackPort(b, hub, 1, Config{}, addrA4)
		u := newUDP(b, s, false, "0.0.0.0:9")
		// An IPv4/UDP datagram 192.0.2.2:9 → 192.0.2.1:9 with 1,000 bytes of payload.
		payload := make([]byte, 1000)
		pkt := header.IPv4(make([]byte, header.IPv4MinimumSize+header.UDPMinimumSize+len(payload)))
		pkt.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt)), TTL: 64, Protocol: uint8(udp.ProtocolNumber),
			SrcAddr: tcpipAddr(addrB4.Addr()), DstAddr: tcpipAddr(addrA4.Addr()),
		})
		pkt.SetChecksum(^pkt.CalculateChecksum())
		ud := header.UDP(pkt[header.IPv4MinimumSize:])
		ud.Encode(&header.UDPFields{SrcPort: 9, DstPort: 9, Length: uint16(len(ud))})
		copy(ud[header.UDPMinimumSize:], payload)
		ud.SetChecksum(^ud.CalculateChecksum(checksum.Checksum(payload, header.PseudoHeaderChecksum(udp.ProtocolNumber, pkt.SourceAddress(), pkt.DestinationAddress(), uint16(len(ud))))))
		buf := make([]byte, 2000)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s.link.receive(s.MAC(), testMAC(2), 0x0800, pkt)
			// Spin rather than wait with Notify, whose allocations are not the frame's.
			for u.Readiness(EventIn) == 0 {
				runtime.Gosched()
			}
			if _, _, _, err := u.ReadFrom(buf, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tx", func(b *testing.B) {
		hub := NewHub()
		s, _ := newStackPort(b, hub, 1, Config{}, addrA4)
		sink := hub.NewPort(testMAC(2), testMTU)
		defer sink.Close()
		sink.SetReceiver(func([6]byte, [6]byte, uint16, []byte) {})
		// Resolve the sink's MAC once, so that the loop sends data frames only.
		mac := sink.MAC()
		if err := s.st.AddStaticNeighbor(linkNICID, 0x0800, tcpipAddr(addrB4.Addr()), tcpip.LinkAddress(mac[:])); err != nil {
			b.Fatal(err)
		}
		u := newUDP(b, s, false, "")
		msg := make([]byte, 1000)
		dst := netip.AddrPortFrom(addrB4.Addr(), 9)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := u.WriteTo(msg, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIdleConnections reports what an idle spliced connection costs: heap and stack bytes
// and goroutines per connection end (both ends of each connection are in the process), once
// its loops have parked (B/end, goroutines/end; sweeps every 10 ms here) and before that, just
// after use (B/end-unparked). Each iteration opens 200 connections and closes them again (fds
// stay under the usual limit).
func BenchmarkIdleConnections(b *testing.B) {
	const conns = 200
	withParkAfter(b, 10*time.Millisecond)
	for range b.N {
		hub := NewHub()
		pa, pb := hub.NewPort(testMAC(1), testMTU), hub.NewPort(testMAC(2), testMTU)
		sa, _ := New(pa, Config{})
		sb, _ := New(pb, Config{})
		sa.SetAddresses([]netip.Prefix{addrA4})
		sb.SetAddresses([]netip.Prefix{addrB4})
		l := listenTCP(b, sb, ap("192.0.2.2:80"))
		before := heapAndStacks()
		g0 := runtime.NumGoroutine()
		var progs []io.Closer
		for range conns {
			cep := dialTCP(b, sa, false, ap("192.0.2.2:80"))
			sep := acceptTCP(b, l)
			c, s := spliceConn(b, cep), spliceConn(b, sep)
			c.Write([]byte("x"))
			readAllN(b, s, 1)
			progs = append(progs, c, s)
		}
		ends := float64(2 * conns)
		b.ReportMetric((heapAndStacks()-before)/ends, "B/end-unparked")
		for sa.Counters().LoopsParked+sb.Counters().LoopsParked < 2*2*conns {
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric((heapAndStacks()-before)/ends, "B/end")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/ends, "goroutines/end")
		for _, p := range progs {
			p.Close()
		}
		l.Close()
		sa.Close()
		sb.Close()
		pa.Close()
		pb.Close()
	}
}

// BenchmarkIdleDatagramSockets: what an idle spliced UDP socket costs once its loops have
// parked (a resolver's or a game client's socket between messages).
func BenchmarkIdleDatagramSockets(b *testing.B) {
	const socks = 1000
	withParkAfter(b, 10*time.Millisecond)
	for range b.N {
		n := newNet(b)
		srv := newUDP(b, n.b, false, "0.0.0.0:5000")
		before := heapAndStacks()
		g0 := runtime.NumGoroutine()
		for range socks {
			c := newUDP(b, n.a, false, "")
			c.Connect(ap("192.0.2.2:5000"))
			seqpacketPair(b, c).Write([]byte("x"))
			recvDatagram(b, srv)
		}
		for n.a.Counters().LoopsParked < 2*socks {
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric((heapAndStacks()-before)/socks, "B/socket")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/socks, "goroutines/socket")
		n.a.Close()
		n.b.Close()
	}
}

// heapAndStacks is the memory the heap's objects and the goroutines' stacks hold, after a
// collection.
func heapAndStacks() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse + m.StackInuse)
}

func readAllN(b testing.TB, c interface{ Read([]byte) (int, error) }, n int) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
