package lab

import (
	"fmt"
	"os"
	"time"
)

// ReadFile returns the contents of path or fails the test.
func ReadFile(t T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return b
}

// WaitFile waits until path exists and is not empty (programs create files such as
// authtoken.secret some time after they start) and returns its contents.
func WaitFile(path string, timeout time.Duration) ([]byte, error) {
	var b []byte
	err := poll(timeout, func() (err error) {
		b, err = os.ReadFile(path)
		if err == nil && len(b) == 0 {
			err = fmt.Errorf("%s is empty", path)
		}
		return err
	})
	return b, err
}
