package interop

import (
	"fmt"
	"os"
	"testing"

	"github.com/ztnc/ztnc/tests/lab"
)

// ztncRun is the ztnc-run binary under test, built by TestMain when ZT1_BIN is set (without
// it every test skips).
var ztncRun string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv(lab.ZT1BinEnv) != "" {
		bin, remove, err := lab.BuildZtncRunTemp("ztnc-interop-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer remove()
		ztncRun = bin
	}
	return m.Run()
}
