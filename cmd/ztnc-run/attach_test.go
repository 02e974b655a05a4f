package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/notify"
	"github.com/ztnc/ztnc/supervisor"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// The instance's filter reaches the launcher unchanged.
func TestFilterRoundTrip(t *testing.T) {
	for _, p := range []supervisor.Policy{{}, {Isolate: true}} {
		prog, err := notify.Compile(p.Spec())
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeFilter(encodeFilter(prog))
		if err != nil || !slices.Equal(got, prog) {
			t.Errorf("policy %+v: round trip changed the filter (%v)", p, err)
		}
	}
	for _, b := range [][]byte{nil, make([]byte, 7), make([]byte, 9), make([]byte, 8*65536)} {
		if _, err := decodeFilter(b); err == nil {
			t.Errorf("decodeFilter of %d bytes: no error", len(b))
		}
	}
}

func FuzzDecodeFilter(f *testing.F) {
	prog, err := notify.Compile(supervisor.Spec())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(encodeFilter(prog))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeFilter(b)
		if err == nil && !bytes.Equal(encodeFilter(p), b) {
			t.Fatalf("decode/encode changed %x", b)
		}
	})
}

// The networks a service joins at start: those of networks.d (zerotier-one's "joined and not
// left", an empty file included), then the others of --nwid.
func TestJoinedBefore(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "networks.d")
	os.MkdirAll(filepath.Join(dir, "1111111111111111.conf"), 0o700) // a directory: not a network file
	for _, name := range []string{"8056c2e21c000001.conf", "8056c2e21c000001.local.conf", "d9d826a22363a18e.conf", "garbage.conf", "0000000000000000.conf", "12345.conf", "8056c2e21c000002.conf.tmp"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o600)
	}
	extra := []ztaddr.NetworkID{0xd9d826a22363a18e, 0x30106af004000001}
	var got []string
	for _, id := range joinedBefore(home, extra) {
		got = append(got, id.String())
	}
	want := []string{"8056c2e21c000001", "d9d826a22363a18e", "30106af004000001"}
	if !slices.Equal(got, want) {
		t.Errorf("joinedBefore: %v, want %v", got, want)
	}
	if ids := joinedBefore(filepath.Join(home, "none"), nil); len(ids) != 0 {
		t.Errorf("joinedBefore of a home without networks.d: %v", ids)
	}
}

// The hand-over message: one line with exactly a listener and a pidfd; anything else is
// refused and the descriptors that came with it are closed.
func TestReceiveHandover(t *testing.T) {
	send := func(t *testing.T, msg string, nfds int) (attachHandover, int, int, error) {
		t.Helper()
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		a := os.NewFile(uintptr(fds[0]), "a")
		b := os.NewFile(uintptr(fds[1]), "b")
		defer a.Close()
		defer b.Close()
		var rights []byte
		if nfds > 0 {
			passed := make([]int, nfds)
			for i := range passed {
				passed[i] = int(os.Stdin.Fd())
			}
			rights = unix.UnixRights(passed...)
		}
		if err := unix.Sendmsg(fds[0], []byte(msg), rights, nil, 0); err != nil {
			t.Fatal(err)
		}
		c, err := net.FileConn(b)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return receiveHandover(c.(*net.UnixConn))
	}
	h, lfd, pidfd, err := send(t, `{"killable":true}`+"\n", 2)
	if err != nil || !h.Killable || lfd < 0 || pidfd < 0 {
		t.Errorf("a good hand-over: %+v %d %d %v", h, lfd, pidfd, err)
	}
	unix.Close(lfd)
	unix.Close(pidfd)
	for _, c := range []struct {
		msg  string
		nfds int
		want string
	}{
		{`{"killable":true}` + "\n", 1, "got 1 descriptors"},
		{`{"killable":true}` + "\n", 3, "got 3 descriptors"},
		{`{"killable":true}` + "\n", 0, "got 0 descriptors"},
		{`{"killable":true}`, 2, "truncated"},
		{`{"killable":"yes"}` + "\n", 2, "cannot unmarshal"},
	} {
		before := openFDs(t)
		if _, _, _, err := send(t, c.msg, c.nfds); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("hand-over %q with %d fds: %v, want %q", c.msg, c.nfds, err, c.want)
		}
		if after := openFDs(t); after != before {
			t.Errorf("hand-over %q with %d fds: %d fds open after, %d before", c.msg, c.nfds, after, before)
		}
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkHandover takes a seccomp listener and a pidfd of a process this one may ptrace.
func TestCheckHandover(t *testing.T) {
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(pidfd)
	if pid, err := pidfdPid(pidfd); err != nil || pid != os.Getpid() {
		t.Errorf("pidfdPid: %d %v, want %d", pid, err, os.Getpid())
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := checkHandover(p[0], pidfd); err == nil || !strings.Contains(err.Error(), "not a seccomp listener") {
		t.Errorf("a pipe as the listener: %v", err)
	}
	if _, err := pidfdPid(p[0]); err == nil {
		t.Error("pidfdPid of a pipe: no error")
	}
}

// A program that ended before its hand-over, reaped or not yet, is errProgramGone.
func TestSupervisablePidGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(pidfd)
	// Readable once the process has ended; it stays a zombie until Wait.
	if _, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, 10000); err != nil {
		t.Fatal(err)
	}
	if _, err := supervisablePid(pidfd); !errors.Is(err, errProgramGone) {
		t.Errorf("ended, not reaped: %v, want errProgramGone", err)
	}
	cmd.Wait()
	if _, err := supervisablePid(pidfd); !errors.Is(err, errProgramGone) {
		t.Errorf("reaped: %v, want errProgramGone", err)
	}
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(self)
	if pid, err := supervisablePid(self); err != nil || pid != os.Getpid() {
		t.Errorf("this process: %d %v", pid, err)
	}
}
