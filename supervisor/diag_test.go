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
