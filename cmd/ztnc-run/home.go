package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// homeLockFile is the file in a node's home that a running node holds locked.
const homeLockFile = "ztnc.lock"

// lockHome takes an exclusive lock on a node's home for as long as this process runs a node
// from it. Two nodes with one identity take each other's traffic (their peers see one
// address at two paths), which fails in confusing ways; a second ztnc-run on the same home
// fails at once instead. The lock goes with the process; unlock releases it earlier.
func lockHome(home string) (unlock func(), err error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("home: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(home, homeLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("home: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("home %s is in use by another ztnc-run: each running node needs a home of its own (--home)", home)
		}
		return nil, fmt.Errorf("lock home %s: %w", home, err)
	}
	return func() { f.Close() }, nil
}
