package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ztnc/ztnc/tests/lab"
)

// cpuGroup is one pair's CPU account: a cgroup that every process of the pair is started in,
// so that the CPU time of all its programs (servers, clients, zerotier-one members, ztnc-run
// node processes), including processes that have exited, can be read before and after a run.
// A nil *cpuGroup (no usable hierarchy here) accounts nothing.
//
// The benchmark joins the group itself while it sets up the pair and while it runs a
// measurement on it, and every process it starts then inherits the group at fork. Its
// programs cannot join on their own: `ip netns exec` mounts the namespace's sysfs over /sys,
// which hides /sys/fs/cgroup. The benchmark's own share (waiting for and reading the client's
// few lines of output) is noise next to the seconds the programs use.
//
// Without CONFIG_IRQ_TIME_ACCOUNTING the kernel charges softirq work, such as a veth or TAP
// packet's trip through the receiver's stack, to whatever task was running when it ran,
// usually the sender, in the same group: the figures cover the kernel's share of both
// members' traffic, approximately, and a little of other users' when they are interrupted.
type cpuGroup struct {
	h    *cgroupHierarchy
	dir  string
	home string // the group the benchmark process was in, to go back to
	// unusable is set when the benchmark could not join: its programs were not accounted.
	unusable bool
}

// cgroupHierarchy is a mounted cgroup hierarchy that accounts CPU time per group.
type cgroupHierarchy struct {
	root  string // mount point
	v2    bool
	usage string // file with the group's CPU time
	// seconds reads the CPU time from the usage file's content.
	seconds func(b []byte) (float64, error)
}

// cgroupV2 reads cgroup v2's cpu.stat, which every group has (usage_usec: microseconds).
func cgroupV2(root string) *cgroupHierarchy {
	return &cgroupHierarchy{root: root, v2: true, usage: "cpu.stat", seconds: func(b []byte) (float64, error) {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
				us, err := strconv.ParseFloat(v, 64)
				return us / 1e6, err
			}
		}
		return 0, fmt.Errorf("no usage_usec in cpu.stat")
	}}
}

// cgroupV1 reads cgroup v1's cpuacct.usage (nanoseconds).
func cgroupV1(root string) *cgroupHierarchy {
	return &cgroupHierarchy{root: root, usage: "cpuacct.usage", seconds: func(b []byte) (float64, error) {
		ns, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		return ns / 1e9, err
	}}
}

// cpuHierarchies returns the hierarchies of a mount table (/proc/self/mounts) that account
// CPU time: cgroup v2 first (pure or beside v1), then v1's cpuacct controller.
func cpuHierarchies(mounts string) []*cgroupHierarchy {
	var v2, v1 []*cgroupHierarchy
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		switch {
		case f[2] == "cgroup2":
			v2 = append(v2, cgroupV2(f[1]))
		case f[2] == "cgroup" && strings.Contains(","+f[3]+",", ",cpuacct,"):
			v1 = append(v1, cgroupV1(f[1]))
		}
	}
	return append(v2, v1...)
}

// newCPUGroup creates the group of pair name in the first hierarchy where that works, removed
// by t's cleanup, or returns nil (and says why) when there is none.
func newCPUGroup(t lab.T, name string) *cpuGroup {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		fmt.Fprintf(os.Stderr, "matrix: no CPU accounting: %v\n", err)
		return nil
	}
	var errs []string
	for _, h := range cpuHierarchies(string(mounts)) {
		dir := filepath.Join(h.root, fmt.Sprintf("ztnc-bench-%d-%s", os.Getpid(), name))
		if err := os.Mkdir(dir, 0o755); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		g := &cpuGroup{h: h, dir: dir, home: filepath.Join(h.root, ownGroup(h))}
		t.Cleanup(g.remove)
		return g
	}
	if len(errs) == 0 {
		errs = append(errs, "no cgroup v2 or v1 cpuacct hierarchy mounted")
	}
	fmt.Fprintf(os.Stderr, "matrix: no CPU accounting: %s\n", strings.Join(errs, "; "))
	return nil
}

// ownGroup is the benchmark process's group in h, relative to h's root ("/" if not found).
func ownGroup(h *cgroupHierarchy) string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(b), "\n") {
		// hierarchy-ID:controller-list:path; v2's line is 0::path.
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && (h.v2 && f[0] == "0" || !h.v2 && strings.Contains(","+f[1]+",", ",cpuacct,")) {
			return f[2]
		}
	}
	return "/"
}

// withinMu serialises within: the benchmark process is in one group at a time.
var withinMu sync.Mutex

// within runs fn with the benchmark process in g, so that the processes fn starts are
// accounted to g, and then moves it back to the group it was in.
func (g *cpuGroup) within(fn func()) {
	if g == nil {
		fn()
		return
	}
	withinMu.Lock()
	defer withinMu.Unlock()
	if err := g.move(g.dir, os.Getpid()); err != nil {
		fmt.Fprintf(os.Stderr, "matrix: CPU account %s: %v\n", g.dir, err)
		g.unusable = true
	}
	// Deferred: fn may end the goroutine (lab.T's Fatalf).
	defer func() {
		if err := g.move(g.home, os.Getpid()); err != nil {
			fmt.Fprintf(os.Stderr, "matrix: CPU account %s: %v\n", g.home, err)
		}
	}()
	fn()
}

// move puts process pid (all its threads) into the group at dir.
func (g *cpuGroup) move(dir string, pid int) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// seconds is the CPU time the group's processes have used so far (NaN without a usable
// group or when it cannot be read).
func (g *cpuGroup) seconds() float64 {
	if g == nil || g.unusable {
		return math.NaN()
	}
	b, err := os.ReadFile(filepath.Join(g.dir, g.h.usage))
	if err != nil {
		return math.NaN()
	}
	s, err := g.h.seconds(b)
	if err != nil {
		return math.NaN()
	}
	return s
}

// remove moves what is left in the group (processes still being reaped) to the benchmark's
// own group, so that the group can go.
func (g *cpuGroup) remove() {
	if b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs")); err == nil {
		for _, pid := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(pid); err == nil {
				g.move(g.home, n)
			}
		}
	}
	if err := os.Remove(g.dir); err != nil {
		fmt.Fprintf(os.Stderr, "matrix: CPU account: %v\n", err)
	}
}
