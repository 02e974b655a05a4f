package main

import (
	"strings"
	"testing"
)

func TestLockHome(t *testing.T) {
	home := t.TempDir() + "/new"
	unlock, err := lockHome(home)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockHome(home); err == nil || !strings.Contains(err.Error(), "in use by another ztnc-run") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := lockHome(home)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}
