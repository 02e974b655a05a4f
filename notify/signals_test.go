package notify

import (
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

// TestSignalPendingSelf reads a real status file: this thread's, with no signal pending.
func TestSignalPendingSelf(t *testing.T) {
	pending, err := SignalPending(uint32(unix.Gettid()))
	if err != nil || pending {
		t.Fatalf("SignalPending(self) = %v, %v", pending, err)
	}
	if _, err := SignalPending(1 << 30); err != unix.ENOENT {
		t.Errorf("a thread that does not exist: %v, want ENOENT", err)
	}
}

func BenchmarkSignalPending(b *testing.B) {
	tid := uint32(unix.Gettid())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignalPending(tid); err != nil {
			b.Fatal(err)
		}
	}
}
