// Package abi issues system calls through the entry points a seccomp filter must not let
// through unchecked; notify's tests use it to prove the filter kills them.
package abi

// Int80 makes system call nr through the i386 entry point (int $0x80) and returns the raw
// result.
func Int80(nr uintptr) uintptr
