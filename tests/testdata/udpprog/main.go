// Command udpprog is the Go program (built with CGO_ENABLED=0, so statically linked) that the
// UDP integration tests and benchmarks run under ztnc-run.
//
//	udpprog serve ADDR              echo server (ReadFromUDP/WriteToUDP) until killed
//	udpprog echo ADDR MSG           connected client (Dial, Write, Read): prints the reply
//	udpprog echoto ADDR MSG         unconnected client (WriteTo, ReadFrom): prints the reply and
//	                                checks that it came from ADDR
//	udpprog semantics A4 A6 LL      socket-level checks (see semantics.go): prints "ok NAME"
//	                                per check; A4/A6 are the program's addresses, LL its
//	                                IPv6 link-local address with its zone
//	udpprog lookup NAME             resolves NAME with Go's own resolver: prints its addresses,
//	                                sorted
//	udpprog rate ADDR N MODE        N datagrams of 64 bytes from one socket to another, at most
//	                                64 in flight; MODE connected (write/read) or unconnected
//	                                (sendto/recvfrom); prints datagrams/s
package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: udpprog serve|echo|echoto|semantics|rate ADDR [ARGS]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2])
	case "echo":
		err = echo(os.Args[2], arg(3), true)
	case "echoto":
		err = echo(os.Args[2], arg(3), false)
	case "semantics":
		err = semantics(os.Args[2], arg(3), arg(4))
	case "lookup":
		var addrs []string
		addrs, err = (&net.Resolver{PreferGo: true}).LookupHost(context.Background(), os.Args[2])
		slices.Sort(addrs) // Go orders them by RFC 6724, which depends on the kinds of address
		fmt.Println("go:", addrs)
	case "rate":
		n, _ := strconv.Atoi(arg(3))
		err = rate(os.Args[2], n, arg(4) == "connected")
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpprog:", err)
		os.Exit(1)
	}
}

func arg(i int) string {
	if len(os.Args) > i {
		return os.Args[i]
	}
	return ""
}

func serve(addr string) error {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening", c.LocalAddr())
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(buf[:n], from); err != nil {
			return err
		}
	}
}

func echo(addr, msg string, connected bool) error {
	to, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(5 * time.Second)
	if connected {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(deadline)
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		fmt.Println(string(buf[:n]))
		return nil
	}
	network := "udp4"
	if to.Addr().Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := c.WriteToUDPAddrPort([]byte(msg), to); err != nil {
		return err
	}
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return err
	}
	// Zones are compared as present or not: Go names them by the host's interfaces.
	if from.Addr().Unmap().WithZone("") != to.Addr().Unmap().WithZone("") || from.Port() != to.Port() ||
		(from.Addr().Zone() == "") != (to.Addr().Zone() == "") {
		return fmt.Errorf("reply from %v, want %v", from, to)
	}
	fmt.Println(string(buf[:n]))
	return nil
}

// rate measures datagrams per second between two sockets of this process, with a window so
// that it measures what is delivered rather than what is dropped.
func rate(addr string, n int, connected bool) error {
	const window = 64
	recv, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		return err
	}
	defer recv.Close()
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	var send *net.UDPConn
	if connected {
		send, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	} else {
		send, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(to.Addr(), 0)))
	}
	if err != nil {
		return err
	}
	defer send.Close()
	if connected {
		if err := connectBack(recv, send.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			return err
		}
	}
	var got atomic.Int64
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for got.Load() < int64(n) {
			var err error
			if connected {
				_, err = recv.Read(buf)
			} else {
				_, _, err = recv.ReadFromUDPAddrPort(buf)
			}
			if err != nil {
				done <- err
				return
			}
			got.Add(1)
		}
		done <- nil
	}()
	msg := make([]byte, 64)
	start := time.Now()
	sent := 0
	lastProgress, lastGot := time.Now(), int64(0)
	for sent < n {
		g := got.Load()
		if int64(sent)-g >= window {
			if g != lastGot {
				lastProgress, lastGot = time.Now(), g
			} else if time.Since(lastProgress) > 50*time.Millisecond {
				sent = int(g) // the window's datagrams were dropped: go on
			}
			time.Sleep(5 * time.Microsecond)
			continue
		}
		var err error
		if connected {
			_, err = send.Write(msg)
		} else {
			_, err = send.WriteToUDPAddrPort(msg, to)
		}
		if err != nil {
			return err
		}
		sent++
	}
	select {
	case err := <-done:
		if err != nil {
			return err
		}
	case <-time.After(2 * time.Second):
	}
	el := time.Since(start)
	fmt.Printf("datagrams %d received %d seconds %.3f per_second %.0f\n", n, got.Load(), el.Seconds(), float64(got.Load())/el.Seconds())
	return nil
}
