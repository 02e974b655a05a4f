package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// As a container's entrypoint ztnc-run is PID 1 of its PID namespace: every orphan of the
// container is reparented to it (it reaps them in waitMain, as it does as a subreaper), the
// kernel delivers it only the signals it handles, and when it exits the kernel kills
// whatever is left. What changes for PID 1:
//   - signals are forwarded to the program's whole process group (a shell's children too,
//     as `tini -g` does), since `docker stop` signals PID 1 alone;
//   - the processes left behind are found with kill(-1), which reaches every process of the
//     namespace but PID 1, instead of a walk of /proc (which may be the host's).

// isInit reports whether ztnc-run is the init of its PID namespace.
var isInit = os.Getpid() == 1

// signalTarget is what kill(2) is given to signal the program (process group leader pid).
func signalTarget(pid int) int {
	if isInit {
		return -pid
	}
	return pid
}

// startupSignals are the signals that stop ztnc-run while it prepares the program's network.
var startupSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// interruptible returns a context cancelled when a startup signal arrives, and a function
// (idempotent) that stops watching and tells which signal came (0 if none). Without it PID 1 would ignore
// `docker stop` while waiting for its network.
func interruptible(parent context.Context) (context.Context, func() syscall.Signal) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, startupSignals...)
	var got syscall.Signal
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case s := <-ch:
			got = s.(syscall.Signal)
			cancel()
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() syscall.Signal {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			<-finished
			cancel()
		})
		return got
	}
}

// interrupted is ztnc-run's exit for a signal that arrived before the program started: the
// status a shell reports for a process the signal killed.
func interrupted(sig syscall.Signal, during string) error {
	return &exitError{exitSignalsBase + int(sig), fmt.Sprintf("%s while %s", sigName(sig), during)}
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// anyDescendants reports whether processes started by the program are still running (after
// the zombies among them were reaped).
func anyDescendants() bool {
	if isInit {
		return syscall.Kill(-1, 0) != syscall.ESRCH
	}
	return len(descendants()) > 0
}
