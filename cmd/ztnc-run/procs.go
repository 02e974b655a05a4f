package main

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// forwarded are the signals ztnc-run passes on to the program (like a shell's foreground job,
// or an init in a container).
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

type signalForwarder struct {
	ch   chan os.Signal
	pid  atomic.Int64
	done chan struct{}
}

// forwardSignals starts passing forwarded signals to the program once target names it.
// Signals that arrive before are kept for it.
func forwardSignals() *signalForwarder {
	f := &signalForwarder{ch: make(chan os.Signal, 16), done: make(chan struct{})}
	signal.Notify(f.ch, forwarded...)
	go func() {
		var early []os.Signal
		for {
			select {
			case s := <-f.ch:
				if pid := f.pid.Load(); pid > 0 {
					syscall.Kill(signalTarget(int(pid)), s.(syscall.Signal))
				} else {
					early = append(early, s)
				}
			case <-f.done:
				return
			}
			if pid := f.pid.Load(); pid > 0 {
				for _, s := range early {
					syscall.Kill(signalTarget(int(pid)), s.(syscall.Signal))
				}
				early = nil
			}
		}
	}()
	return f
}

func (f *signalForwarder) target(pid int) {
	f.pid.Store(int64(pid))
	select {
	case f.ch <- syscall.Signal(0):
	default:
	}
}

func (f *signalForwarder) stop() {
	signal.Stop(f.ch)
	close(f.done)
}

// waitMain reaps children (the program and any orphan reparented to us) until the program
// exits, and returns its status; an error from the supervisor ends the wait first.
//
// With the terminal (fg), a program stopped from it (^Z) stops ztnc-run too, as a shell's job:
// the terminal goes back to ztnc-run's group, ztnc-run stops itself so the shell sees the job
// stopped, and when continued it hands the terminal back and continues the program.
func waitMain(pid int, served <-chan error, fg bool) (syscall.WaitStatus, error) {
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	for {
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG|syscall.WUNTRACED, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil || got <= 0 {
				break
			}
			if got != pid {
				continue
			}
			if ws.Exited() || ws.Signaled() {
				return ws, nil
			}
			if ws.Stopped() && fg {
				restoreForeground()
				syscall.Kill(os.Getpid(), syscall.SIGSTOP)
				// Continued.
				giveForeground(pid)
				syscall.Kill(-pid, syscall.SIGCONT)
			}
		}
		select {
		case <-chld:
		case err := <-served:
			if err != nil {
				return 0, err
			}
			// No process uses the filter any more; the program is about to be reaped.
			served = nil
		case <-time.After(time.Second):
			// SIGCHLD can coalesce with one already handled; look again now and then.
		}
	}
}

// descendants lists the processes below ztnc-run (as a subreaper, orphans stay below it).
func descendants() []int {
	self := os.Getpid()
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name may contain spaces and parentheses: fields follow the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid] = ppid
	}
	var out []int
	for pid := range parent {
		for p, n := parent[pid], 0; p > 0 && n < 1024; p, n = parent[p], n+1 {
			if p == self {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// killTree sends sig to every descendant.
func killTree(sig syscall.Signal) {
	if isInit {
		syscall.Kill(-1, sig)
		return
	}
	for _, pid := range descendants() {
		syscall.Kill(pid, sig)
	}
}

// reapAll waits for every child to go.
func reapAll() {
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(-1, &ws, 0, nil); err == syscall.ECHILD {
			return
		} else if err != nil && err != syscall.EINTR {
			return
		}
	}
}

// stopGrace is how long processes left behind by the program get after SIGTERM.
const stopGrace = 2 * time.Second

// stopDescendants ends what the program left running (daemons, background jobs): their
// network ends with ztnc-run. SIGTERM first, SIGKILL after stopGrace.
func stopDescendants() {
	reapNoHang()
	if !anyDescendants() {
		return
	}
	killTree(syscall.SIGTERM)
	deadline := time.Now().Add(stopGrace)
	for time.Now().Before(deadline) {
		reapNoHang()
		if !anyDescendants() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	killTree(syscall.SIGKILL)
	reapAll()
}

func reapNoHang() {
	for {
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); err != nil || got <= 0 {
			if err == syscall.EINTR {
				continue
			}
			return
		}
	}
}

// foregroundTTY reports whether stdin is a terminal whose foreground process group is ours:
// the program then takes the foreground (it reads the terminal, and ^C reaches it directly).
func foregroundTTY() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// restoreForeground gives the terminal back to ztnc-run's process group.
func restoreForeground() { giveForeground(unix.Getpgrp()) }

// giveForeground makes process group pgrp the terminal's foreground.
func giveForeground(pgrp int) {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, pgrp)
}
