package host

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// asInit returns argv that runs ztnc-run as PID 1 of a new PID namespace (with its own /proc),
// as a container runtime starts an entrypoint.
func asInit(args ...string) []string {
	return append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child", ztncRun}, args...)
}

// initPID returns the host PID of the ztnc-run that unshare started (its only child).
func initPID(t *testing.T, unshare *proc) int {
	t.Helper()
	var pid int
	waitFor(t, unshare, "ztnc-run under unshare", 30*time.Second, func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", unshare.Pid(), unshare.Pid()))
		if err != nil {
			return err
		}
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("children %q", b)
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) != "ztnc-run" {
			return fmt.Errorf("child %d is %q", pid, comm)
		}
		return nil
	})
	return pid
}

// processesWith lists host processes whose command line contains marker.
func processesWith(marker string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(marker)) {
			out = append(out, e.Name()+": "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
	}
	return out
}

// countZombies is a shell snippet printing the zombies of the PID namespace.
const countZombies = `z=0; for f in /proc/[0-9]*/stat; do s=$(sed 's/.*) //' "$f" 2>/dev/null | cut -d' ' -f1); [ "$s" = Z ] && z=$((z+1)); done; echo "zombies=$z"`

// TestPID1Reaping: as PID 1, ztnc-run reaps the orphans of the namespace as they die (no
// zombie stays), exits with the program's status, and ends what the program left running.
func TestPID1Reaping(t *testing.T) {
	need(t, "unshare", "busybox")
	marker := fmt.Sprintf("%d.%d", 1000+os.Getpid()%1000, time.Now().UnixNano()%100000)
	script := `echo "init=$(cat /proc/1/comm)"
for i in 1 2 3 4 5 6 7 8; do sh -c 'busybox sleep 0.1 &'; done
sh -c 'busybox sleep ` + marker + ` &'
busybox sleep 1
# The orphans have died; a loaded machine may take a moment to reap the last: 10 s at most.
for i in $(seq 100); do zc=$(` + countZombies + `); [ "$zc" = zombies=0 ] && break; busybox sleep 0.1; done
echo "$zc"
exit 42`
	start := time.Now()
	r := lab.RunCmd(t, time.Minute, lab.Spec{Argv: asInit("--local", "198.51.100.1/24", "--", "sh", "-c", script)})
	if r.Code != 42 {
		t.Errorf("exit %d, want the program's 42\n%s", r.Code, r)
	}
	if !strings.Contains(r.Stdout, "init=ztnc-run\n") {
		t.Fatalf("ztnc-run is not PID 1:\n%s", r)
	}
	if !strings.Contains(r.Stdout, "zombies=0\n") {
		t.Errorf("zombies left unreaped:\n%s", r)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v", d)
	}
	if left := processesWith("sleep " + marker); len(left) > 0 {
		t.Errorf("processes left running: %q", left)
	}
}

// TestPID1Signals: SIGTERM sent to ztnc-run as PID 1 (docker stop) reaches the program's
// whole process group: the shell's background child gets it too, and the shell, which waits
// for that child in its trap, exits with its own status. A program killed by a signal gives
// 128+N.
func TestPID1Signals(t *testing.T) {
	need(t, "unshare")
	script := `trap 'wait $child; echo main got TERM; exit 7' TERM
sh -c 'trap "echo child got TERM; exit 0" TERM; echo child ready; while :; do sleep 0.05; done' &
child=$!
echo ready
while :; do sleep 0.05; done`
	u := lab.StartChild(t, "unshare", lab.Spec{Argv: asInit("--local", "198.51.100.1/24", "--", "sh", "-c", script)})
	pid := initPID(t, u)
	waitFor(t, u, "the program", 30*time.Second, func() error {
		// Both shells must have set their traps before the signal comes.
		if out := u.Stdout.String(); !strings.Contains(out, "\nready") && !strings.HasPrefix(out, "ready") || !strings.Contains(out, "child ready") {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := u.Wait(t, 15*time.Second); code != 7 {
		t.Errorf("exit %d, want 7", code)
	}
	if out := u.Stdout.String(); !strings.Contains(out, "child got TERM\n") || !strings.Contains(out, "main got TERM\n") {
		t.Errorf("output:\n%s", out)
	}

	r := lab.RunCmd(t, time.Minute, lab.Spec{Argv: asInit("--local", "198.51.100.1/24", "--", "sh", "-c", "kill -KILL $$")})
	if r.Code != 128+9 {
		t.Errorf("program killed by SIGKILL: exit %d, want 137\n%s", r.Code, r)
	}
}

// TestPID1Startup: as PID 1, a network that does not come up in --wait ends ztnc-run with
// exit 125 and one line saying what to do; SIGTERM while it waits ends it at once with 143.
func TestPID1Startup(t *testing.T) {
	need(t, "unshare")
	s := startSelfHosted(t)
	nwid := s.network(t, "pid1")
	home, flags := s.member(t, 6) // never authorized

	r := lab.RunCmd(t, time.Minute, lab.Spec{Argv: asInit(append(flags, "--nwid", nwid, "--wait", "4s", "--", "true")...)})
	want := "ztnc-run: ACCESS_DENIED: authorize " + home.Address() + " on network " + nwid + "\n"
	if r.Code != 125 || !strings.HasSuffix(r.Stderr, want) {
		t.Errorf("want exit 125 and last line %q\n%s", want, r)
	}

	u := lab.StartChild(t, "unshare", lab.Spec{Argv: asInit(append(flags, "--nwid", nwid, "--", "true")...)})
	pid := initPID(t, u)
	waitFor(t, u, "the control socket", 30*time.Second, func() error {
		_, err := os.Stat(home.Path("ztnc.sock"))
		return err
	})
	started := time.Now()
	syscall.Kill(pid, syscall.SIGTERM)
	if code := u.Wait(t, 10*time.Second); code != 143 {
		t.Errorf("exit %d, want 143", code)
	}
	if d := time.Since(started); d > 5*time.Second {
		t.Errorf("took %v to stop", d)
	}
	if want := "ztnc-run: SIGTERM while waiting for the network\n"; !strings.HasSuffix(u.Stderr.String(), want) {
		t.Errorf("stderr does not end with %q:\n%s", want, &u.Stderr)
	}
	if _, err := os.Stat(home.Path("ztnc.sock")); !os.IsNotExist(err) {
		t.Errorf("control socket left: %v", err)
	}
}
