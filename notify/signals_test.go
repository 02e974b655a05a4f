package notify

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnblockedPending(t *testing.T) {
	status := func(pnd, shd, blk string) string {
		return "Name:\tcat\nState:\tS (sleeping)\nSigQ:\t0/31760\nSigPnd:\t" + pnd + "\nShdPnd:\t" + shd +
			"\nSigBlk:\t" + blk + "\nSigIgn:\t0000000000000000\nCpus_allowed_list:\t0-1\n"
	}
	for _, c := range []struct {
		name    string
		status  string
		pending bool
		err     bool
	}{
		{"none", status("0000000000000000", "0000000000000000", "0000000000000000"), false, false},
		{"thread's own", status("0000000000000100", "0000000000000000", "0000000000000000"), true, false},
		{"process-wide", status("0000000000000000", "0000000000004000", "0000000000000000"), true, false},
		{"blocked", status("0000000000000100", "0000000000000000", "0000000000000100"), false, false},
		{"one of two blocked", status("0000000000000100", "0000000000004000", "0000000000000100"), true, false},
		{"high signal", status("8000000000000000", "0000000000000000", "7fffffffffffffff"), true, false},
		{"after a long line", strings.Repeat("Groups:\t"+strings.Repeat("1000 ", 2000)+"\n", 1) +
			status("0000000000000000", "0000000000000002", "0000000000000000"), true, false},
		{"no SigBlk", "Name:\tcat\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n", false, true},
		{"cut off", "Name:\tcat\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t00000", false, true},
		{"not hex", status("000000000000000g", "0000000000000000", "0000000000000000"), false, true},
		{"empty value", status("", "0000000000000000", "0000000000000000"), false, true},
		{"too long", status("00000000000000000", "0000000000000000", "0000000000000000"), false, true},
	} {
		pending, err := unblockedPending([]byte(c.status))
		if pending != c.pending || (err != nil) != c.err {
			t.Errorf("%s: %v, %v; want %v, error %v", c.name, pending, err, c.pending, c.err)
		}
	}
}

// TestSignalsSelf reads a real status file: this thread's. Whether a signal is pending is not
// checked here: the runtime's own (SIGURG, a child's SIGCHLD) may be, for a moment.
// TestRestartOnSignal checks both answers on a trapped thread.
func TestSignalsSelf(t *testing.T) {
	sigs, err := OpenSignals(uint32(unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	defer sigs.Close()
	if _, err := sigs.Pending(); err != nil {
		t.Fatalf("Pending(self): %v", err)
	}
	if _, err := OpenSignals(1 << 30); err != unix.ENOENT {
		t.Errorf("a thread that does not exist: %v, want ENOENT", err)
	}
}

// TestSignalsThreadGone: once the thread is gone its held status file fails to read, so a
// reused tid is never taken for it.
func TestSignalsThreadGone(t *testing.T) {
	cmd := exec.Command("sleep", "0.05")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	sigs, err := OpenSignals(uint32(cmd.Process.Pid)) // its only thread
	if err != nil {
		t.Fatal(err)
	}
	defer sigs.Close()
	if pending, err := sigs.Pending(); err != nil || pending {
		t.Fatalf("Pending while it runs = %v, %v", pending, err)
	}
	cmd.Wait() // reaped: the task is gone
	if pending, err := sigs.Pending(); err == nil {
		t.Fatalf("Pending after the thread was reaped = %v, nil; want an error", pending)
	}
}

func BenchmarkSignalsPending(b *testing.B) {
	sigs, err := OpenSignals(uint32(unix.Gettid()))
	if err != nil {
		b.Fatal(err)
	}
	defer sigs.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sigs.Pending(); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzUnblockedPending: any status text is parsed without a panic, and masks it reads decide
// the answer as they do when written out cleanly.
func FuzzUnblockedPending(f *testing.F) {
	f.Add([]byte("Name:\tcat\nSigQ:\t0/31760\nSigPnd:\t0000000000000100\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000100\n"))
	f.Add([]byte("\nSigPnd:\t\nShdPnd:\t1\nSigBlk:"))
	f.Add([]byte("\nSigPnd: 8000000000000000 x\nShdPnd:\t0\nSigBlk:\tffffffffffffffff\n"))
	f.Fuzz(func(t *testing.T, status []byte) {
		pending, err := unblockedPending(status)
		if err != nil {
			return
		}
		var masks [3]uint64
		for i, field := range maskFields {
			masks[i], _ = hexField(status, field)
		}
		clean := fmt.Sprintf("Name:\tx\nSigPnd:\t%016x\nShdPnd:\t%016x\nSigBlk:\t%016x\n", masks[0], masks[1], masks[2])
		again, err := unblockedPending([]byte(clean))
		if err != nil || again != pending {
			t.Fatalf("%q: pending %v; written out cleanly %v, %v", status, pending, again, err)
		}
	})
}
