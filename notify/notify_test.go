package notify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/notify/internal/abi"
)

const childEnv = "ZTNC_NOTIFY_TEST_CHILD"

// TestMain doubles as the supervised program: with childEnv set the binary runs one of the
// behaviours below instead of the tests.
func TestMain(m *testing.M) {
	if what := os.Getenv(childEnv); what != "" {
		child(what)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func child(what string) {
	switch what {
	case "socket":
		fd, _, e := syscall.RawSyscall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)
		fmt.Printf("socket=%d errno=%d\n", int(fd), e)
		if e == 0 {
			unix.Write(int(fd), []byte("hello"))
			b := make([]byte, 64)
			n, _ := unix.Read(int(fd), b)
			fmt.Printf("read=%q\n", b[:max(n, 0)])
			flags, _ := unix.FcntlInt(fd, unix.F_GETFD, 0)
			fmt.Printf("cloexec=%v\n", flags&unix.FD_CLOEXEC != 0)
		}
	case "continue":
		fd, _, e := syscall.RawSyscall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)
		dom, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		fmt.Printf("socket errno=%d domain=%d\n", e, dom)
	case "untrapped":
		// AF_UNIX sockets do not match the rule: no notification.
		fd, _, e := syscall.RawSyscall(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)
		fmt.Printf("unix socket ok=%v errno=%d\n", int(fd) >= 0, e)
	case "memory":
		buf := []byte("abcdefgh")
		r, _, e := syscall.RawSyscall(unix.SYS_CONNECT, 1000, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		fmt.Printf("connect=%d errno=%d buf=%s\n", int(r), e, buf)
	case "int80":
		abi.Int80(20) // getpid, i386 numbering
		fmt.Println("survived")
	case "x32":
		syscall.RawSyscall(0x40000000|unix.SYS_GETPID, 0, 0, 0)
		fmt.Println("survived")
	case "iouring":
		var params [120]byte
		_, _, e := syscall.RawSyscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
		fmt.Printf("io_uring_setup errno=%d\n", e)
	case "setfd":
		r, _, e := syscall.RawSyscall(unix.SYS_CONNECT, 1003, 0, 0)
		n, err := unix.Write(50, []byte("at fifty"))
		fmt.Printf("connect=%d errno=%d write=%d %v\n", int(r), e, n, err)
	case "sockets":
		// Many trapped socket() calls; each must return a socket.
		n, _ := strconv.Atoi(os.Getenv("ZTNC_NOTIFY_LOOPS"))
		bad := 0
		for range n {
			fd, _, e := syscall.RawSyscall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)
			var st unix.Stat_t
			if e != 0 || unix.Fstat(int(fd), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
				bad++
			}
			if e == 0 {
				unix.Close(int(fd))
			}
		}
		fmt.Printf("sockets=%d bad=%d\n", n, bad)
	case "loop":
		n, _ := strconv.Atoi(os.Getenv("ZTNC_NOTIFY_LOOPS"))
		start, cpu := time.Now(), cpuTime()
		for range n {
			syscall.RawSyscall(unix.SYS_CONNECT, 1002, 0, 0)
		}
		printPerCall(n, time.Since(start), cpuTime()-cpu)
	case "socketloop":
		// Trapped socket() calls answered with an fd, each closed: ns per socket()+close().
		n, _ := strconv.Atoi(os.Getenv("ZTNC_NOTIFY_LOOPS"))
		start, cpu := time.Now(), cpuTime()
		for range n {
			fd, _, e := syscall.RawSyscall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)
			if e != 0 {
				fmt.Printf("socket errno=%d\n", e)
				return
			}
			unix.Close(int(fd))
		}
		printPerCall(n, time.Since(start), cpuTime()-cpu)
	case "idleloop", "idlesocketloop":
		// As loop and socketloop with a 200 µs pause before each call (CPUs go idle, as between
		// the calls of one connection at a time): median ns per call.
		n, _ := strconv.Atoi(os.Getenv("ZTNC_NOTIFY_LOOPS"))
		ds := make([]time.Duration, 0, n)
		for range n {
			time.Sleep(200 * time.Microsecond)
			start := time.Now()
			if what == "idleloop" {
				syscall.RawSyscall(unix.SYS_CONNECT, 1002, 0, 0)
			} else {
				fd, _, _ := syscall.RawSyscall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)
				ds = append(ds, time.Since(start))
				unix.Close(int(fd))
				continue
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		fmt.Printf("%d ns/call\n", ds[len(ds)/2].Nanoseconds())
	case "restart":
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGUSR1)
		fmt.Printf("tid=%d\n", unix.Gettid())
		os.Stdout.Sync()
		r, _, e := syscall.Syscall(unix.SYS_CONNECT, 1001, 0, 0)
		got := false
		select {
		case <-sig:
			got = true
		case <-time.After(2 * time.Second):
		}
		fmt.Printf("connect=%d errno=%d signal=%v\n", int(r), e, got)
	}
}

func testSpec() Spec {
	return Spec{
		Trap: []Rule{
			{Syscall: "socket", Args: []Arg{{Index: 0, Mask: 0xffffffff, Value: unix.AF_INET}}},
			{Syscall: "connect"},
		},
		Deny: []Rule{{Syscall: "io_uring_setup", Errno: unix.ENOSYS}},
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// printPerCall prints a loop's wall time and CPU time per call (the child's side of benchChild).
func printPerCall(n int, wall, cpu time.Duration) {
	n = max(n, 1)
	fmt.Printf("%.0f ns/call %.0f cpu-ns/call\n", float64(wall.Nanoseconds())/float64(n), float64(cpu.Nanoseconds())/float64(n))
}

type result struct {
	out    string
	status syscall.WaitStatus
}

// runChild runs the test binary as behaviour what under the filter, answering notifications with
// handle, and returns its output and exit status.
func runChild(t testing.TB, what string, handle func(l *Listener, n *Notification)) result {
	t.Helper()
	prog, err := Compile(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(prog, Command{
		Path:  exe,
		Args:  []string{exe},
		Env:   append(os.Environ(), childEnv+"="+what),
		Files: []*os.File{nil, outW, os.Stderr},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	served := make(chan error, 1)
	go func() {
		for {
			var n Notification
			if err := p.Listener.Receive(&n); err != nil {
				served <- err
				return
			}
			handle(p.Listener, &n)
		}
	}()
	if err := p.WaitExec(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(outR)
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	p.Listener.Close()
	if err := <-served; !errors.Is(err, ErrClosed) && !errors.Is(err, unix.EPIPE) {
		t.Errorf("receive loop ended with %v", err)
	}
	return result{string(out), st.Sys().(syscall.WaitStatus)}
}

func TestInjectFD(t *testing.T) {
	var mine *os.File
	r := runChild(t, "socket", func(l *Listener, n *Notification) {
		if n.Nr != unix.SYS_SOCKET || n.Arch != unix.AUDIT_ARCH_X86_64 {
			t.Errorf("unexpected notification %+v", n)
			l.Fail(n.ID, unix.EPERM)
			return
		}
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Error(err)
			return
		}
		mine = os.NewFile(uintptr(fds[1]), "mine")
		if _, err := l.AddFDReturn(n.ID, fds[0], true); err != nil {
			t.Error(err)
		}
		unix.Close(fds[0])
		b := make([]byte, 5)
		io.ReadFull(mine, b)
		mine.Write(bytes.ToUpper(b))
	})
	if mine != nil {
		defer mine.Close()
	}
	if !strings.Contains(r.out, `read="HELLO"`) || !strings.Contains(r.out, "cloexec=true") {
		t.Fatalf("child output %q", r.out)
	}
}

// TestInjectFDInterrupted injects fds while the supervisor's thread keeps receiving signals: an
// injection interrupted by one (Go's handlers restart the call) must still answer the trapped
// call with the fd, never leave it answered with 0.
// Both ways: inject-then-answer (the choice when the wait is killable) and ADDFD|SEND.
func TestInjectFDInterrupted(t *testing.T) {
	for _, killable := range []bool{true, false} {
		t.Run(fmt.Sprintf("killable=%v", killable), func(t *testing.T) { testInjectFDInterrupted(t, killable) })
	}
}

func testInjectFDInterrupted(t *testing.T, killable bool) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	defer signal.Stop(sig)
	t.Setenv("ZTNC_NOTIFY_LOOPS", "3000")
	r := runChild(t, "sockets", func(l *Listener, n *Notification) {
		if !l.Killable && killable {
			t.Skip("the kernel has no SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
		}
		l.Killable = killable // only picks how AddFDReturn injects: the filter waits as it does
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid := unix.Gettid()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				unix.Tgkill(os.Getpid(), tid, syscall.SIGUSR1)
			}
		}()
		fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if _, err := l.AddFDReturn(n.ID, fds[0], true); err != nil {
			t.Errorf("AddFDReturn: %v", err)
		}
		close(stop)
		<-done
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	if !strings.Contains(r.out, "sockets=3000 bad=0") {
		t.Fatalf("child output %q", r.out)
	}
}

func TestInjectFDWithoutSend(t *testing.T) {
	// The pre-5.14 path: inject, then answer.
	r := runChild(t, "socket", func(l *Listener, n *Notification) {
		l.Send = false
		fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		if _, err := l.AddFDReturn(n.ID, fds[0], false); err != nil {
			t.Error(err)
		}
		b := make([]byte, 5)
		unix.Read(fds[1], b)
		unix.Write(fds[1], []byte("bye"))
	})
	if !strings.Contains(r.out, `read="bye"`) || !strings.Contains(r.out, "cloexec=false") {
		t.Fatalf("child output %q", r.out)
	}
}

func TestInjectFDAtNumber(t *testing.T) {
	got := make([]byte, 8)
	r := runChild(t, "setfd", func(l *Listener, n *Notification) {
		if n.Nr != unix.SYS_CONNECT {
			l.Continue(n.ID)
			return
		}
		fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		if err := l.AddFDAt(n.ID, fds[0], 50, false); err != nil {
			t.Error(err)
		}
		l.Return(n.ID, 0)
		for off := 0; off < len(got); {
			k, err := unix.Read(fds[1], got[off:])
			if err != nil || k == 0 {
				break
			}
			off += k
		}
	})
	if !strings.Contains(r.out, "connect=0 errno=0 write=8 <nil>") || string(got) != "at fifty" {
		t.Fatalf("child output %q, read %q", r.out, got)
	}
}

func TestContinueAndUntrapped(t *testing.T) {
	count := 0
	handle := func(l *Listener, n *Notification) {
		count++
		if err := l.Continue(n.ID); err != nil {
			t.Error(err)
		}
	}
	r := runChild(t, "continue", handle)
	if !strings.Contains(r.out, "socket errno=0 domain=2") || count != 1 {
		t.Fatalf("child output %q after %d notifications", r.out, count)
	}
	count = 0
	r = runChild(t, "untrapped", handle)
	if !strings.Contains(r.out, "unix socket ok=true errno=0") || count != 0 {
		t.Fatalf("child output %q after %d notifications", r.out, count)
	}
}

func TestMemory(t *testing.T) {
	r := runChild(t, "memory", func(l *Listener, n *Notification) {
		if n.Nr != unix.SYS_CONNECT || n.Args[0] != 1000 {
			l.Fail(n.ID, unix.EPERM)
			return
		}
		b := make([]byte, n.Args[2])
		if err := ReadMemory(n.Pid, n.Args[1], b); err != nil {
			t.Error(err)
		}
		if !l.Valid(n.ID) {
			t.Error("notification invalid after read")
		}
		if err := WriteMemory(n.Pid, n.Args[1], bytes.ToUpper(b)); err != nil {
			t.Error(err)
		}
		if err := ReadMemory(n.Pid, 0, b[:1]); err == nil {
			t.Error("read of address 0 succeeded")
		}
		l.Fail(n.ID, unix.ECONNREFUSED)
	})
	want := fmt.Sprintf("connect=-1 errno=%d buf=ABCDEFGH", unix.ECONNREFUSED)
	if !strings.Contains(r.out, want) {
		t.Fatalf("child output %q, want %q", r.out, want)
	}
}

func TestForeignEntryPointsKilled(t *testing.T) {
	for _, what := range []string{"int80", "x32"} {
		t.Run(what, func(t *testing.T) {
			if what == "int80" && !int80Available(t) {
				t.Skip("int $0x80 does not reach the kernel here (no IA32 emulation, or a VM that does not route it): it faults before any filter could see it")
			}
			r := runChild(t, what, func(l *Listener, n *Notification) { l.Continue(n.ID) })
			if !r.status.Signaled() || r.status.Signal() != syscall.SIGSYS || strings.Contains(r.out, "survived") {
				t.Fatalf("status %v, output %q: want killed by SIGSYS", r.status, r.out)
			}
		})
	}
}

// int80Available reports whether int $0x80 reaches the kernel's system calls here: the child
// runs it without a filter and survives. Kernels built or booted without IA32 emulation, and
// some VMs (a PVM guest here), answer it with a general protection fault instead (SIGSEGV).
func int80Available(t *testing.T) bool {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=int80")
	out, err := cmd.Output()
	if err == nil && strings.Contains(string(out), "survived") {
		return true
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && strings.Contains(string(exit.Stderr), "SIGSEGV") {
		return false
	}
	t.Fatalf("int $0x80 without a filter: %v, output %q", err, out)
	return false
}

func TestIOUringDenied(t *testing.T) {
	r := runChild(t, "iouring", func(l *Listener, n *Notification) { l.Continue(n.ID) })
	if want := fmt.Sprintf("io_uring_setup errno=%d", unix.ENOSYS); !strings.Contains(r.out, want) {
		t.Fatalf("child output %q, want %q", r.out, want)
	}
}

// TestRestartOnSignal checks the blocking-call protocol: while the supervisor holds a call the
// thread's signal stays pending; answering ERESTARTSYS lets the handler run and the call restart
// (Go installs its handlers with SA_RESTART) as a new notification.
func TestRestartOnSignal(t *testing.T) {
	seen := 0
	r := runChild(t, "restart", func(l *Listener, n *Notification) {
		if n.Nr != unix.SYS_CONNECT || n.Args[0] != 1001 {
			l.Continue(n.ID)
			return
		}
		seen++
		if seen > 1 {
			l.Return(n.ID, 0)
			return
		}
		// Opened before the signal: each Pending reads the status afresh.
		sigs, err := OpenSignals(n.Pid)
		if err != nil {
			t.Error(err)
			l.Return(n.ID, 0)
			return
		}
		defer sigs.Close()
		if pending, err := sigs.Pending(); pending || err != nil {
			t.Errorf("before the signal: pending %v, %v", pending, err)
		}
		if err := unix.Tgkill(pidOf(n.Pid), int(n.Pid), unix.SIGUSR1); err != nil {
			t.Error(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			pending, err := sigs.Pending()
			if err != nil {
				t.Error(err)
				break
			}
			if pending || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err := l.Fail(n.ID, ERESTARTSYS); err != nil {
			t.Error(err)
		}
	})
	if !strings.Contains(r.out, "connect=0 errno=0 signal=true") || seen != 2 {
		t.Fatalf("child output %q after %d notifications", r.out, seen)
	}
}

func pidOf(tid uint32) int {
	tgid, err := threadGroup(tid)
	if err != nil {
		return int(tid)
	}
	return tgid
}

func TestExecErrors(t *testing.T) {
	prog, err := Compile(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	noexec := dir + "/noexec"
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	for _, tc := range []struct {
		path  string
		errno unix.Errno
	}{{dir + "/missing", unix.ENOENT}, {noexec, unix.EACCES}} {
		p, err := Start(prog, Command{Path: tc.path, Args: []string{tc.path}, Env: os.Environ()})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			var n Notification
			for p.Listener.Receive(&n) == nil {
			}
		}()
		err = p.WaitExec()
		var ee *ExecError
		if !errors.As(err, &ee) || ee.Errno != tc.errno {
			t.Errorf("%s: WaitExec = %v, want %v", tc.path, err, tc.errno)
		}
		p.Wait()
		p.Listener.Close()
		p.Release()
	}
}
