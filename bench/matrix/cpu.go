package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/tests/lab"
)

// cpuacctRoot is the cgroup v1 cpuacct hierarchy; every pair gets a group below it so that
// the CPU time of all its programs (servers, clients, zerotier-one members, ztnc-run
// supervisors), including processes that have exited, can be read before and after each run.
const cpuacctRoot = "/sys/fs/cgroup/cpuacct"

// cpuGroup is one pair's CPU account. A nil *cpuGroup (no cpuacct here) accounts nothing.
// `ip netns exec` mounts a sysfs of the namespace over /sys, hiding the cgroup files, so
// programs join through a bind mount of the group's directory under the run's temp dir.
//
// Without CONFIG_IRQ_TIME_ACCOUNTING (the case here) the kernel charges softirq work, such as
// a veth or TAP packet's trip through the receiver's stack, to whatever task was running
// when it ran, which is usually the sender in the same group: the figures cover the kernel's
// share of both members' traffic, approximately.
type cpuGroup struct {
	dir   string // in the cpuacct hierarchy
	procs string // its cgroup.procs, reached through the bind mount
}

// newCPUGroup creates the group of pair name, removed by t's cleanup, or returns nil when the
// machine has no cpuacct hierarchy.
func newCPUGroup(t lab.T, name string) *cpuGroup {
	dir := filepath.Join(cpuacctRoot, fmt.Sprintf("ztnc-bench-%d-%s", os.Getpid(), name))
	if err := os.Mkdir(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "matrix: no CPU accounting (%v)\n", err)
		return nil
	}
	mnt := t.TempDir()
	if err := unix.Mount(dir, mnt, "", unix.MS_BIND, ""); err != nil {
		os.Remove(dir)
		fmt.Fprintf(os.Stderr, "matrix: no CPU accounting (bind mount: %v)\n", err)
		return nil
	}
	t.Cleanup(func() {
		unix.Unmount(mnt, unix.MNT_DETACH)
		// Move leftovers (killed members being reaped) out so the group can go.
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
			for _, pid := range strings.Fields(string(b)) {
				os.WriteFile(filepath.Join(cpuacctRoot, "cgroup.procs"), []byte(pid), 0)
			}
		}
		os.Remove(dir)
	})
	return &cpuGroup{dir: dir, procs: filepath.Join(mnt, "cgroup.procs")}
}

// wrap returns e with its programs started inside the group.
func (g *cpuGroup) wrap(e *lab.Endpoint) *lab.Endpoint {
	if g == nil {
		return e
	}
	inner, procs := e.Wrap, g.procs
	out := *e
	out.Wrap = func(argv []string) []string {
		if inner != nil {
			argv = inner(argv)
		}
		return append([]string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, procs}, argv...)
	}
	return &out
}

// add moves a running process into the group.
func (g *cpuGroup) add(t lab.T, pid int) {
	if g == nil {
		return
	}
	if err := os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatalf("cpu account: %v", err)
	}
}

// seconds is the CPU time the group's tasks have used so far (NaN-free: 0 without a group).
func (g *cpuGroup) seconds() float64 {
	if g == nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(g.dir, "cpuacct.usage"))
	if err != nil {
		return 0
	}
	ns, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	return ns / 1e9
}
