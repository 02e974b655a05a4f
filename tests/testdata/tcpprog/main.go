// Command tcpprog is the Go program (built with CGO_ENABLED=0, so statically linked) that the
// integration tests and benchmarks run under ztnc-run.
//
//	tcpprog serve ADDR            serve until killed; prints "listening ADDR"
//	tcpprog echo ADDR MSG          one connection: send MSG, print the reply
//	tcpprog many ADDR N            N sequential connections, each an echo, while busy
//	                               goroutines force constant preemption (SIGURG); prints failures
//	tcpprog bulk ADDR BYTES        receive BYTES from the server; prints its sha256 and rate
//	tcpprog names ADDR             checks getsockname/getpeername against the server's view
//	tcpprog pairs ADDR N           N connect+accept round trips; prints rate and median
//	tcpprog calls ADDR N           N getsockname calls on a connected socket (one trapped
//	                               call each under ztnc-run); prints rate and median
//	tcpprog parallel ADDR N        N connections open at once; then each uploads its own
//	                               64 KiB and checks the sha256 the server saw
//
// The server answers one request line per connection: "echo MSG", "bulk N" (N bytes of a
// seeded stream, then its sha256 on stderr), "names" (its view of both addresses), "hash N"
// (the sha256 of the N bytes that follow).
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: tcpprog serve|echo|many|bulk|names|pairs|calls|parallel ADDR [ARG]")
		os.Exit(2)
	}
	addr := os.Args[2]
	arg := ""
	if len(os.Args) > 3 {
		arg = os.Args[3]
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(addr)
	case "echo":
		var reply string
		reply, err = request(addr, "echo "+arg)
		fmt.Println(reply)
	case "many":
		err = many(addr, atoi(arg))
	case "bulk":
		err = bulk(addr, atoi(arg))
	case "names":
		err = names(addr)
	case "pairs":
		err = pairs(addr, atoi(arg))
	case "calls":
		err = calls(addr, atoi(arg))
	case "parallel":
		err = parallel(addr, atoi(arg))
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpprog:", err)
		os.Exit(1)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpprog: bad number", s)
		os.Exit(2)
	}
	return n
}

func serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go handle(c)
	}
}

func handle(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch cmd {
	case "echo":
		fmt.Fprintf(c, "%s\n", arg)
	case "names":
		fmt.Fprintf(c, "%s %s\n", c.RemoteAddr(), c.LocalAddr())
	case "bulk":
		n, _ := strconv.ParseInt(arg, 10, 64)
		h := sha256.New()
		w := io.MultiWriter(c, h)
		if _, err := io.CopyN(w, stream(), n); err != nil {
			fmt.Fprintln(os.Stderr, "bulk:", err)
			return
		}
		fmt.Fprintf(os.Stderr, "sent sha256 %s\n", hex.EncodeToString(h.Sum(nil)))
	case "hash":
		n, _ := strconv.ParseInt(arg, 10, 64)
		h := sha256.New()
		if _, err := io.CopyN(h, r, n); err != nil {
			return
		}
		fmt.Fprintf(c, "%x\n", h.Sum(nil))
	case "ping":
		// pairs: connection only.
	}
}

// stream is an endless seeded pseudo-random byte stream: the data of "bulk".
func stream() io.Reader {
	return rand.NewChaCha8([32]byte{'z', 't', 'n', 'c'})
}

func request(addr, req string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", req); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(reply), err
}

// many makes n sequential connections while busy goroutines churn: they allocate garbage (the
// collector then preempts every goroutine, including one in a trapped socket call, with
// SIGURG) and burn CPU in bursts long enough for the scheduler's forced preemption.
func many(addr string, n int) error {
	var stop atomic.Bool
	var sink atomic.Pointer[[]byte]
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for !stop.Load() {
				end := time.Now().Add(12 * time.Millisecond)
				for time.Now().Before(end) {
					b := make([]byte, 64<<10)
					sink.Store(&b)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	defer stop.Store(true)
	gc0 := gcCount()
	failures := 0
	for i := range n {
		want := strconv.Itoa(i)
		got, err := request(addr, "echo "+want)
		if err != nil || got != want {
			failures++
			fmt.Fprintf(os.Stderr, "connection %d: got %q, %v\n", i, got, err)
		}
	}
	fmt.Printf("connections %d failures %d gc_cycles %d\n", n, failures, gcCount()-gc0)
	if failures > 0 {
		return fmt.Errorf("%d of %d connections failed", failures, n)
	}
	return nil
}

func gcCount() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

func bulk(addr string, n int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "bulk %d\n", n); err != nil {
		return err
	}
	h := sha256.New()
	start := time.Now()
	got, err := io.Copy(h, c)
	d := time.Since(start)
	if err != nil {
		return err
	}
	if got != int64(n) {
		return fmt.Errorf("received %d bytes, want %d", got, n)
	}
	fmt.Printf("received sha256 %s\n", hex.EncodeToString(h.Sum(nil)))
	fmt.Printf("bytes %d seconds %.3f gbit/s %.3f\n", got, d.Seconds(), float64(got)*8/d.Seconds()/1e9)
	return nil
}

func names(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(c, "names\n")
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	f := strings.Fields(reply)
	if len(f) != 2 {
		return fmt.Errorf("bad reply %q", reply)
	}
	fmt.Printf("client local %s remote %s; server remote %s local %s\n", c.LocalAddr(), c.RemoteAddr(), f[0], f[1])
	if f[0] != c.LocalAddr().String() || f[1] != c.RemoteAddr().String() {
		return fmt.Errorf("addresses disagree")
	}
	return nil
}

// pairs measures connect+accept round trips: each iteration dials, the server accepts, and
// the connection closes. It prints pairs per second and the median duration of one pair.
func pairs(addr string, n int) error {
	d := make([]time.Duration, 0, n)
	dials := make([]time.Duration, 0, n)
	start := time.Now()
	for range n {
		t := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		dials = append(dials, time.Since(t))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		var b [1]byte
		c.Read(b[:]) // the server closes: end of file
		c.Close()
		d = append(d, time.Since(t))
	}
	total := time.Since(start)
	slices.Sort(d)
	slices.Sort(dials)
	fmt.Printf("pairs %d per_second %.0f median_us %.1f dial_median_us %.1f\n", n, float64(n)/total.Seconds(),
		float64(d[len(d)/2].Nanoseconds())/1e3, float64(dials[len(dials)/2].Nanoseconds())/1e3)
	return nil
}

// calls measures the round trip of one socket call that ztnc-run emulates (getsockname).
func calls(addr string, n int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	d := make([]time.Duration, 0, n)
	var callErr error
	start := time.Now()
	rc.Control(func(fd uintptr) {
		for range n {
			t := time.Now()
			if _, err := syscall.Getsockname(int(fd)); err != nil {
				callErr = err
				return
			}
			d = append(d, time.Since(t))
		}
	})
	total := time.Since(start)
	if callErr != nil {
		return callErr
	}
	slices.Sort(d)
	fmt.Printf("calls %d per_second %.0f median_us %.2f\n", n, float64(n)/total.Seconds(), float64(d[len(d)/2].Nanoseconds())/1e3)
	return nil
}

// parallel opens n connections at once and holds them all open; then each uploads 64 KiB of
// its own and compares the sha256 the server replies with its own. It prints the failures.
func parallel(addr string, n int) error {
	const size = 64 << 10
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { conns[i], errs[i] = net.DialTimeout("tcp", addr, 30*time.Second) })
	}
	wg.Wait()
	opened := 0
	for i, c := range conns {
		if errs[i] == nil {
			opened++
			defer c.Close()
		}
	}
	var failures atomic.Int64
	for i, c := range conns {
		if c == nil {
			failures.Add(1)
			fmt.Fprintf(os.Stderr, "connection %d: %v\n", i, errs[i])
			continue
		}
		wg.Go(func() {
			if err := upload(c, i, size); err != nil {
				failures.Add(1)
				fmt.Fprintf(os.Stderr, "connection %d: %v\n", i, err)
			}
		})
	}
	wg.Wait()
	fmt.Printf("parallel %d open %d failures %d\n", n, opened, failures.Load())
	if f := failures.Load(); f > 0 {
		return fmt.Errorf("%d of %d connections failed", f, n)
	}
	return nil
}

func upload(c net.Conn, seed, size int) error {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}).Read(data)
	want := sha256.Sum256(data)
	if _, err := fmt.Fprintf(c, "hash %d\n", size); err != nil {
		return err
	}
	if _, err := c.Write(data); err != nil {
		return err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(reply); got != hex.EncodeToString(want[:]) {
		return fmt.Errorf("server saw sha256 %s, sent %x", got, want)
	}
	return nil
}
