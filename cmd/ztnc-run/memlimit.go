package main

import (
	"bufio"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// A container's memory limit is its cgroup's, shared by ztnc-run and the programs it runs.
// The garbage collector's headroom (gc.go) is memory ztnc-run takes beyond its live heap, so
// under a limit it takes at most an eighth of it: 64 MiB of a 256 MiB container would be a
// quarter of what the program may use, gone to a tuning for speed.
const limitShare = 8

// unlimitedCgroup: cgroup v1 reports no limit as the largest page multiple of int64.
const unlimitedCgroup = 1 << 62

// cgroupMemoryLimit returns the memory limit of the cgroup this process runs in — the lowest
// of its own and its ancestors' within the hierarchy's mount — or 0 if none is set or it
// cannot be found. root is the file system's root ("/"; tests pass a tree of their own). It
// reads cgroup v1's memory controller where the memory controller is mounted there (hybrid
// hosts), else cgroup v2's memory.max.
func cgroupMemoryLimit(root string) uint64 {
	v1Path, v2Path, ok := ownCgroups(path.Join(root, "proc/self/cgroup"))
	if !ok {
		return 0
	}
	mounts, err := os.ReadFile(path.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return 0
	}
	var v1, v2 *cgroupMount
	for _, line := range strings.Split(string(mounts), "\n") {
		m, ok := parseCgroupMount(line)
		switch {
		case !ok:
		case m.v2 && v2 == nil:
			v2 = &m
		case m.memory && v1 == nil:
			v1 = &m
		}
	}
	switch {
	case v1 != nil && v1Path != "":
		return lowestLimit(root, *v1, v1Path, "memory.limit_in_bytes")
	case v2 != nil && v2Path != "":
		return lowestLimit(root, *v2, v2Path, "memory.max")
	}
	return 0
}

// ownCgroups reads /proc/self/cgroup: the path in the v1 hierarchy that has the memory
// controller, and the path in the v2 hierarchy ("" where there is none).
func ownCgroups(file string) (v1, v2 string, ok bool) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, rest, _ := strings.Cut(sc.Text(), ":")
		controllers, p, found := strings.Cut(rest, ":")
		switch {
		case !found:
		case id == "0" && controllers == "":
			v2 = p
		case hasMemory(controllers):
			v1 = p
		}
	}
	return v1, v2, sc.Err() == nil
}

// cgroupMount is a cgroup hierarchy's mount: the hierarchy's directory it shows (root) at
// point.
type cgroupMount struct {
	root, point string
	v2, memory  bool
}

// parseCgroupMount reads a line of /proc/self/mountinfo ("ID PARENT MAJ:MIN ROOT POINT
// OPTIONS [TAGS] - TYPE SOURCE SUPER-OPTIONS"); ok if it mounts a cgroup hierarchy.
func parseCgroupMount(line string) (m cgroupMount, ok bool) {
	mount, super, found := strings.Cut(line, " - ")
	fields, sfields := strings.Fields(mount), strings.Fields(super)
	if !found || len(fields) < 5 || len(sfields) < 3 {
		return m, false
	}
	m.root, m.point = unescapeMount(fields[3]), unescapeMount(fields[4])
	switch sfields[0] {
	case "cgroup2":
		m.v2 = true
	case "cgroup":
		m.memory = hasMemory(sfields[2])
	default:
		return m, false
	}
	return m, true
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, …).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// lowestLimit reads file in the cgroup at p and each ancestor up to the mount's root, and
// returns the lowest limit set, or 0.
func lowestLimit(root string, m cgroupMount, p, file string) uint64 {
	rel := "/" // p outside what the mount shows (another cgroup namespace): its top is ours
	if m.root == "/" {
		rel = p
	} else if r, ok := strings.CutPrefix(p, m.root); ok && (r == "" || r[0] == '/') {
		rel = r
	}
	lowest := uint64(0)
	for dir := path.Join("/", rel); ; dir = path.Dir(dir) {
		b, err := os.ReadFile(path.Join(root, m.point, dir, file))
		if err == nil {
			v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			if err == nil && v > 0 && v < unlimitedCgroup && (lowest == 0 || v < lowest) {
				lowest = v // ("max", cgroup v2's no limit, does not parse)
			}
		}
		if dir == "/" {
			return lowest
		}
	}
}

// hasMemory reports whether a comma-separated list of controllers (or mount options) names
// the memory controller.
func hasMemory(list string) bool {
	return slices.Contains(strings.Split(list, ","), "memory")
}
