package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long the agent waits after SIGTERM before it kills what it started.
const stopGrace = 3 * time.Second

// Serve runs the agent: it reads requests from in and writes events to out until in ends, then
// stops every process group it started and returns.
func Serve(in io.Reader, out io.Writer) error {
	a := &server{out: out, procs: make(map[uint64]*exec.Cmd)}
	a.emit(Event{Kind: EventReady, Pid: os.Getpid()})
	s := bufio.NewScanner(in)
	s.Buffer(make([]byte, 64<<10), 16<<20)
	for s.Scan() {
		var req Request
		if err := json.Unmarshal(s.Bytes(), &req); err != nil {
			a.emit(Event{Kind: EventError, Error: fmt.Sprintf("bad request %q: %v", s.Text(), err)})
			continue
		}
		a.handle(req)
	}
	a.stopAll()
	return s.Err()
}

type server struct {
	outMu sync.Mutex
	out   io.Writer

	mu    sync.Mutex
	procs map[uint64]*exec.Cmd // running, by request ID
	wg    sync.WaitGroup       // waiters of started processes
}

func (a *server) emit(ev Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // Event has only plain fields
	}
	a.outMu.Lock()
	defer a.outMu.Unlock()
	fmt.Fprintf(a.out, "%s%s\n", Marker, b)
}

func (a *server) fail(id uint64, err error) {
	a.emit(Event{ID: id, Kind: EventError, Error: err.Error()})
}

func (a *server) handle(req Request) {
	switch req.Op {
	case OpStart:
		a.start(req)
	case OpSignal:
		a.mu.Lock()
		cmd := a.procs[req.Target]
		a.mu.Unlock()
		if cmd != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.Signal(req.Signal))
		}
	case OpDial:
		go a.dial(req)
	default:
		a.fail(req.ID, fmt.Errorf("unknown op %q", req.Op))
	}
}

func (a *server) start(req Request) {
	if len(req.Argv) == 0 {
		a.fail(req.ID, errors.New("start: empty argv"))
		return
	}
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Env = append(os.Environ(), req.Env...)
	cmd.Dir = req.Dir
	// Its own process group, so that a signal reaches the workers a server forks; killed if
	// the agent dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c := req.Creds; c != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Groups}
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	open := func(name string, flag int) (*os.File, error) {
		if name == "" {
			name = os.DevNull
		}
		f, err := os.OpenFile(name, flag, 0o644)
		if err == nil {
			files = append(files, f)
		}
		return f, err
	}
	var err error
	if cmd.Stdin, err = open(req.Stdin, os.O_RDONLY); err != nil {
		a.fail(req.ID, err)
		return
	}
	const outFlags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if cmd.Stdout, err = open(req.Stdout, outFlags); err != nil {
		a.fail(req.ID, err)
		return
	}
	if cmd.Stderr, err = open(req.Stderr, outFlags); err != nil {
		a.fail(req.ID, err)
		return
	}
	// Hold the lock across Start so that a signal request for this ID finds the process.
	a.mu.Lock()
	err = cmd.Start()
	if err == nil {
		a.procs[req.ID] = cmd
	}
	a.mu.Unlock()
	if err != nil {
		a.fail(req.ID, err)
		return
	}
	a.emit(Event{ID: req.ID, Kind: EventStarted, Pid: cmd.Process.Pid})
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		cmd.Wait()
		// Workers that outlive their leader (a crashed server's children) go with it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		a.mu.Lock()
		delete(a.procs, req.ID)
		a.mu.Unlock()
		ev := Event{ID: req.ID, Kind: EventExited}
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			ev.Signal = int(ws.Signal())
		} else {
			ev.Code = ws.ExitStatus()
		}
		a.emit(ev)
	}()
}

func (a *server) dial(req Request) {
	ctx, cancel := context.WithTimeout(context.Background(), req.Timeout)
	defer cancel()
	var d net.Dialer
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		c, err := d.DialContext(attempt, "tcp", req.Addr)
		cancelAttempt()
		if err == nil {
			c.Close()
			a.emit(Event{ID: req.ID, Kind: EventDialed})
			return
		}
		select {
		case <-ctx.Done():
			a.fail(req.ID, fmt.Errorf("dial %s: no connection after %v: %w", req.Addr, req.Timeout, err))
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopAll ends every running process group: SIGTERM, then SIGKILL after stopGrace.
func (a *server) stopAll() {
	signalAll := func(sig syscall.Signal) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, cmd := range a.procs {
			syscall.Kill(-cmd.Process.Pid, sig)
		}
	}
	signalAll(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopGrace):
		signalAll(syscall.SIGKILL)
		<-done
	}
}
