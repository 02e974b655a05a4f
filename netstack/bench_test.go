package netstack

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSpliceThroughput measures one TCP stream between two stacks on a hub, with a
// socketpair at both ends as under ztnc-run: program → socketpair → proxy → stack A → hub →
// stack B → proxy → socketpair → program. Reported in Gbit/s of payload.
func BenchmarkSpliceThroughput(b *testing.B) {
	for _, cc := range []string{"reno", "cubic"} {
		b.Run(cc, func(b *testing.B) {
			n := newNetConfig(b, Config{CongestionControl: cc})
			client, server, _, _ := n.splicedPair(b, false, 80)
			const chunk = 256 << 10
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			done := make(chan int64)
			go func() {
				m, _ := io.Copy(io.Discard, server)
				done <- m
			}()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := client.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			client.CloseWrite()
			got := <-done
			elapsed := time.Since(start)
			b.StopTimer()
			if got != int64(b.N)*chunk {
				b.Fatalf("received %d of %d bytes", got, b.N*chunk)
			}
			b.ReportMetric(float64(got)*8/elapsed.Seconds()/1e9, "Gbit/s")
			c := n.a.Counters()
			b.ReportMetric(float64(c.TCPRetransmits+n.b.Counters().TCPRetransmits), "retrans")
			b.ReportMetric(float64(n.b.Counters().DropQueueFull), "rxdrops")
		})
	}
}

// BenchmarkConnect measures connection setup and teardown between two stacks on a hub:
// connect, accept, close both (endpoints only, no proxy).
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
		connectAndAccept(b, c, l, dst)
	}
}

func connectAndAccept(b *testing.B, c, l *TCPEndpoint, dst netip.AddrPort) {
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
	// The server closes first and keeps the TIME_WAIT: the client's ephemeral port is free
	// again at once, so b.N is not limited by the port range.
	s.Close()
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
}
