package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	const (
		v1Mounts = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
			"36 31 0:33 / /sys/fs/cgroup/cpu\\040acct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n" +
			"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
		v2Mount = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	)
	for _, c := range []struct {
		name           string
		cgroup, mounts string
		files          map[string]string
		want           uint64
	}{
		{
			name:   "v1 memory on a hybrid host: the lowest of the cgroup and its ancestors",
			cgroup: "4:memory:/jobs/x\n1:cpu,cpuacct:/\n0::/\n", mounts: v1Mounts,
			files: map[string]string{
				"sys/fs/cgroup/memory/jobs/x/memory.limit_in_bytes": "9223372036854771712\n",
				"sys/fs/cgroup/memory/jobs/memory.limit_in_bytes":   "536870912\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes":        "9223372036854771712\n",
				"sys/fs/cgroup/unified/jobs/x/memory.max":           "1048576\n", // no memory controller there
			},
			want: 512 << 20,
		},
		{
			name:   "v1 without a limit",
			cgroup: "4:memory:/\n0::/\n", mounts: v1Mounts,
			files: map[string]string{"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"},
		},
		{
			name:   "v2 in a container's cgroup namespace",
			cgroup: "0::/\n", mounts: v2Mount,
			files: map[string]string{"sys/fs/cgroup/memory.max": "268435456\n"},
			want:  256 << 20,
		},
		{
			name:   "v2, no limit",
			cgroup: "0::/user.slice/a\n", mounts: v2Mount,
			files: map[string]string{
				"sys/fs/cgroup/user.slice/a/memory.max": "max\n",
				"sys/fs/cgroup/user.slice/memory.max":   "max\n",
			},
		},
		{
			name:   "v2 mount showing a subtree",
			cgroup: "0::/docker/abc/sub\n", mounts: "30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			files: map[string]string{
				"sys/fs/cgroup/sub/memory.max": "max\n",
				"sys/fs/cgroup/memory.max":     "134217728\n",
			},
			want: 128 << 20,
		},
		{
			name:   "v2 path outside the mount's subtree: its top",
			cgroup: "0::/other\n", mounts: "30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			files: map[string]string{"sys/fs/cgroup/memory.max": "134217728\n"},
			want:  128 << 20,
		},
		{
			name:   "mount point with a space",
			cgroup: "0::/\n", mounts: "30 23 0:26 / /sys/fs/c\\040g rw - cgroup2 cgroup2 rw\n",
			files: map[string]string{"sys/fs/c g/memory.max": "67108864\n"},
			want:  64 << 20,
		},
		{name: "no cgroup file", mounts: v2Mount},
		{name: "no cgroup mount", cgroup: "0::/\n", mounts: "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"},
		{name: "garbage", cgroup: "x\n::\n", mounts: "- - -\n\n1 2 3\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{"proc/self/mountinfo": c.mounts}
			if c.cgroup != "" {
				files["proc/self/cgroup"] = c.cgroup
			}
			for name, content := range c.files {
				files[name] = content
			}
			for name, content := range files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := cgroupMemoryLimit(root); got != c.want {
				t.Errorf("cgroupMemoryLimit = %d MiB, want %d MiB", got>>20, c.want>>20)
			}
		})
	}
}

func FuzzParseCgroupMount(f *testing.F) {
	f.Add("35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory")
	f.Add("30 23 0:26 /docker/abc /sys/fs/c\\040g rw - cgroup2 cgroup2 rw")
	f.Add("1 2 3 4 \\04 - cgroup x memory")
	f.Fuzz(func(t *testing.T, line string) {
		m, ok := parseCgroupMount(line)
		if ok && m.v2 && m.memory {
			t.Fatalf("%q: both v1 memory and v2", line)
		}
	})
}
