package host

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestInstancesAndHomes: two ztnc-run side by side on two homes each answer for their own
// node; a second ztnc-run on a home in use is refused with a message naming the holder; a
// control socket and pid file left by a dead process are replaced.
func TestInstancesAndHomes(t *testing.T) {
	need(t, "busybox")
	s := startSelfHosted(t)
	nwid := s.network(t, "homes")
	homeA, flagsA := s.member(t, 2)
	homeB, flagsB := s.member(t, 3)
	for i, h := range []string{homeA.Address(), homeB.Address()} {
		if err := s.ctl.Authorize(t.Context(), nwid, h, netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", 70+i))); err != nil {
			t.Fatal(err)
		}
	}
	// Leftovers of a ztnc-run that was killed: a socket file nobody serves and its pid file.
	stale, err := net.Listen("unix", homeB.Path("ztnc.sock"))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	os.WriteFile(homeB.Path("ztnc.pid"), []byte("999999\n"), 0o644)

	a := ztnc(t, "a", nil, append(flagsA, "--nwid", nwid, "--", "busybox", "sleep", "600")...)
	b := ztnc(t, "b", nil, append(flagsB, "--nwid", nwid, "--", "busybox", "sleep", "600")...)
	for _, c := range []struct {
		p    *proc
		home string
		addr string
	}{{a, homeA.Dir, homeA.Address()}, {b, homeB.Dir, homeB.Address()}} {
		waitFor(t, c.p, "status of "+c.p.Name, 30*time.Second, func() error {
			var st statusJSON
			r := cli(t, &st, "status", "-j", "--home", c.home)
			if r.Code != 0 {
				return fmt.Errorf("%s", r)
			}
			if st.Address != c.addr || st.Ztnc.PID != c.p.Pid() || len(st.Ztnc.Programs) != 1 {
				return fmt.Errorf("%s answers for %s (pid %d, %d programs), want %s (pid %d)", c.home, st.Address, st.Ztnc.PID, len(st.Ztnc.Programs), c.addr, c.p.Pid())
			}
			return nil
		})
	}
	// ZTNC_HOME picks the instance too.
	if r := runZtnc(t, 30*time.Second, []string{"ZTNC_HOME=" + homeB.Dir}, "status"); r.Code != 0 || !strings.Contains(r.Stdout, homeB.Address()) {
		t.Errorf("status with ZTNC_HOME: %s", r)
	}

	r := runZtnc(t, 30*time.Second, nil, append(flagsA, "--nwid", nwid, "--", "busybox", "true")...)
	want := fmt.Sprintf("ztnc-run: home %s is in use by another ztnc-run (pid %d)", homeA.Dir, a.Pid())
	if r.Code != 125 || !strings.HasPrefix(r.Stderr, want) || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("second ztnc-run on a home in use: want exit 125 and one line starting %q\n%s", want, r)
	}
	// The refused one touched nothing: the first still answers.
	if r := cli(t, nil, "status", "--home", homeA.Dir); r.Code != 0 {
		t.Errorf("first instance after the refusal: %s", r)
	}
}
