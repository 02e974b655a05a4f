package supervisor

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnixSocketExists(t *testing.T) {
	if !diagWorks() {
		t.Skip("kernel without unix_diag: sockets are taken as gone when their connection ends")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	var st unix.Stat_t
	unix.Fstat(fds[0], &st)
	if !unixSocketExists(st.Ino) {
		t.Fatal("open socket reported gone")
	}
	unix.Close(fds[0])
	if unixSocketExists(st.Ino) {
		t.Fatal("closed socket reported open")
	}
}

func TestUnixSocketsExisting(t *testing.T) {
	if !diagWorks() {
		t.Skip("kernel without unix_diag")
	}
	// Enough sockets for a dump; every other one closed.
	inos := map[uint64]bool{}
	open := map[uint64]bool{}
	for i := range 8 {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fds[1])
		var st unix.Stat_t
		unix.Fstat(fds[0], &st)
		inos[st.Ino] = true
		if i%2 == 0 {
			unix.Close(fds[0])
		} else {
			open[st.Ino] = true
			defer unix.Close(fds[0])
		}
	}
	for _, n := range []int{1, len(inos)} { // one lookup, and a dump
		ask := map[uint64]bool{}
		for ino := range inos {
			if len(ask) == n {
				break
			}
			ask[ino] = true
		}
		got := unixSocketsExisting(ask)
		for ino := range ask {
			if got[ino] != open[ino] {
				t.Errorf("asked %d: socket %d reported existing=%v, want %v", n, ino, got[ino], open[ino])
			}
		}
		if len(got) > len(ask) {
			t.Errorf("asked %d: %d reported", n, len(got))
		}
	}
}
