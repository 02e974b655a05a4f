package lab

import (
	"os"
	"os/exec"
)

// Require skips t unless the lab can run here: root (namespaces, veth, bridges), the ip tool,
// and every tool named (looked up in PATH, or an absolute path that must be executable).
func Require(t T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("lab: needs root for network namespaces")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("lab: %s not installed (%v)", tool, err)
		}
	}
}
