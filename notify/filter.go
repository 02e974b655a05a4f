package notify

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Spec says which system calls a filter sends to the supervisor and which it fails outright.
// Every other call of the native architecture is allowed; calls made through a foreign entry
// point (i386 int 0x80, x32 numbers on x86-64) kill the process, since the rules below would not
// see them.
type Spec struct {
	Trap []Rule
	Deny []Rule
}

// Rule matches one system call by name; when Args is not empty every argument test must hold.
// Several rules for one call are alternatives. For Deny rules Errno is what the call returns.
type Rule struct {
	Syscall string
	Args    []Arg
	Errno   unix.Errno
}

// Arg tests argument Index: (arg & Mask) == Value, or with NotEqual arg != Value. Mask 0
// means all 64 bits.
type Arg struct {
	Index    uint
	Mask     uint64
	Value    uint64
	NotEqual bool
}

// Program is a compiled classic-BPF seccomp program.
type Program []unix.SockFilter

// Compile builds the BPF program for spec with libseccomp.
func Compile(spec Spec) (Program, error) {
	f, err := seccomp.NewFilter(seccomp.ActAllow)
	if err != nil {
		return nil, fmt.Errorf("seccomp filter: %w", err)
	}
	defer f.Release()
	if err := f.SetBadArchAction(seccomp.ActKillProcess); err != nil {
		return nil, fmt.Errorf("seccomp filter: bad-arch action: %w", err)
	}
	add := func(r Rule, act seccomp.ScmpAction) error {
		nr, err := seccomp.GetSyscallFromName(r.Syscall)
		if err != nil {
			return fmt.Errorf("seccomp filter: syscall %q: %w", r.Syscall, err)
		}
		if len(r.Args) == 0 {
			return f.AddRule(nr, act)
		}
		conds := make([]seccomp.ScmpCondition, 0, len(r.Args))
		for _, a := range r.Args {
			mask := a.Mask
			if mask == 0 {
				mask = ^uint64(0)
			}
			c, err := seccomp.MakeCondition(a.Index, seccomp.CompareMaskedEqual, mask, a.Value)
			if a.NotEqual {
				c, err = seccomp.MakeCondition(a.Index, seccomp.CompareNotEqual, a.Value)
			}
			if err != nil {
				return fmt.Errorf("seccomp filter: %s arg %d: %w", r.Syscall, a.Index, err)
			}
			conds = append(conds, c)
		}
		return f.AddRuleConditional(nr, act, conds)
	}
	for _, r := range spec.Trap {
		if err := add(r, seccomp.ActNotify); err != nil {
			return nil, err
		}
	}
	for _, r := range spec.Deny {
		if err := add(r, seccomp.ActErrno.SetReturnCode(int16(r.Errno))); err != nil {
			return nil, err
		}
	}
	return export(f)
}

// export reads the program out of libseccomp. The pinned Debian libseccomp (2.5) cannot export
// to memory, so it goes through a pipe.
func export(f *seccomp.ScmpFilter) (Program, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	done := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	err = f.ExportBPF(w)
	w.Close()
	raw := <-done
	if err != nil {
		return nil, fmt.Errorf("seccomp filter: export: %w", err)
	}
	if len(raw) == 0 || len(raw)%8 != 0 {
		return nil, fmt.Errorf("seccomp filter: export: bad program length %d", len(raw))
	}
	prog := make(Program, len(raw)/8)
	for i := range prog {
		b := raw[i*8:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:]),
		}
	}
	return prog, nil
}
