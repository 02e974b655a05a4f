package host

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// TestCgroupMemoryLimit: in a cgroup with a memory limit (a container's), ztnc-run gives its
// garbage collector at most an eighth of the limit as headroom, not 64 MiB; -v logs the
// choice.
func TestCgroupMemoryLimit(t *testing.T) {
	need(t)
	dir := memoryCgroup(t, 256<<20)
	r := lab.RunCmd(t, 30*time.Second, lab.Spec{Argv: []string{"sh", "-c", `echo $$ >"$0/cgroup.procs" && exec "$@"`,
		dir, ztncRun, "-v", "--local", "198.51.100.1/24", "--", "true"}})
	if r.Code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", r.Code, r.Stderr)
	}
	if want := "headroom_mib=32 cgroup_memory_limit_mib=256"; !strings.Contains(r.Stderr, want) {
		t.Fatalf("stderr lacks %q:\n%s", want, r.Stderr)
	}
}

// memoryCgroup makes a cgroup limited to limit bytes of memory (cgroup v1's memory
// controller on a hybrid host, else cgroup v2's), removed at the end of the test, and returns
// its directory; it skips the test where it cannot.
func memoryCgroup(t *testing.T, limit int) string {
	t.Helper()
	name := fmt.Sprintf("ztnc-test-%d", os.Getpid())
	for _, h := range []struct{ parent, file string }{
		{"/sys/fs/cgroup/memory", "memory.limit_in_bytes"},
		{"/sys/fs/cgroup", "memory.max"},
	} {
		if _, err := os.Stat(filepath.Join(h.parent, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(h.parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		t.Cleanup(func() {
			// The processes have exited; the kernel may take a moment to let go of the cgroup.
			for i := 0; os.Remove(dir) != nil && i < 50; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		})
		if err := os.WriteFile(filepath.Join(dir, h.file), []byte(fmt.Sprint(limit)), 0o644); err != nil {
			continue
		}
		return dir
	}
	t.Skip("cannot make a memory cgroup here")
	return ""
}
