package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary act as ztnc-run: a test that runs it with ZTNC_TEST_AS_MAIN=1
// in its environment gets main's exit status and output.
func TestMain(m *testing.M) {
	if os.Getenv("ZTNC_TEST_AS_MAIN") == "1" {
		os.Unsetenv("ZTNC_TEST_AS_MAIN")
		os.Exit(execute(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestBadInput: input ztnc-run cannot use ends it before anything starts, with one line on
// stderr naming the problem and the exit status of the shell's conventions: 125 for ztnc-run's
// own, 126 when the program cannot run, 127 when it is not found; the control commands' and
// idtool's exit as zerotier-cli's and zerotier-idtool's do.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	local := []string{"--local", "198.51.100.1/24"}
	for _, c := range []struct {
		name string
		args []string
		env  string
		code int
		line string // what stderr's one line holds
	}{
		{"no program", nil, "", exitFailure, "no program given"},
		{"unknown flag", []string{"--bogus", "--", "true"}, "", exitFailure, "unknown flag: --bogus"},
		{"short nwid", []string{"--nwid", "8056c2e21c00000", "--", "true"}, "", exitFailure, `--nwid "8056c2e21c00000"`},
		{"non-hex nwid", []string{"--nwid", "8056c2e21c00000x", "--", "true"}, "", exitFailure, "16 hex digits"},
		{"nwid from the environment", []string{"--", "true"}, "ZTNC_NWID=xyz", exitFailure, `"xyz"`},
		{"local without prefix", []string{"--local", "198.51.100.1", "--", "true"}, "", exitFailure, "--local"},
		{"bad duration", append(local, "--wait", "soon", "--", "true"), "", exitFailure, "--wait"},
		{"bad log format", append(local, "--log-format", "xml", "--", "true"), "", exitFailure, "--log-format"},
		{"bad publish", append(local, "-p", "8080", "--", "true"), "", exitFailure, "--publish"},
		{"bad port", []string{"root", "--port", "99999"}, "", exitFailure, "--port 99999"},
		{"not found", append(local, "--", "no-such-program-ztnc"), "", exitNotFound, "no-such-program-ztnc: command not found"},
		{"no such file", append(local, "--", filepath.Join(dir, "missing")), "", exitNotFound, "missing: no such file or directory"},
		{"not executable", append(local, "--", noexec), "", exitCannotExec, "noexec: permission denied"},
		{"directory", append(local, "--", dir), "", exitCannotExec, ": is a directory"},
		{"path through a file", append(local, "--", noexec+"/x"), "", exitCannotExec, "x: not a directory"},
		{"join without a network", []string{"join", "--home", dir}, "", 2, "join: accepts 1 arg(s)"},
		{"join a malformed network", []string{"join", "--home", dir, "8056c2e21c00000"}, "", 2, "invalid network id"},
		{"status without an instance", []string{"status", "--home", dir}, "", 1, "no ztnc-run is running with home"},
		{"idtool unknown command", []string{"idtool", "bogus"}, "", 1, `unknown command "bogus"`},
		{"idtool missing argument", []string{"idtool", "validate"}, "", 1, "idtool validate: accepts 1 arg(s)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], c.args...)
			cmd.Env = []string{"ZTNC_TEST_AS_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dir}
			if c.env != "" {
				cmd.Env = append(cmd.Env, c.env)
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			msg := stderr.String()
			if code != c.code || !strings.HasPrefix(msg, "ztnc-run: ") || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, c.line) {
				t.Errorf("exit %d, stderr %q; want exit %d and one line holding %q", code, msg, c.code, c.line)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q", &stdout)
			}
		})
	}
}
