package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// replyTimeout bounds the wait for an agent's answer beyond the time the request itself may
// take, so that a hung agent (or a hung wrapper around it) fails a test instead of hanging it.
const replyTimeout = 30 * time.Second

// ErrAgentGone is the error of requests that were pending when the agent process ended.
var ErrAgentGone = errors.New("agent exited")

// Client drives one agent process: the harness's end of the protocol.
type Client struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	logf   func(format string, args ...any)
	stderr *tailWriter

	writeMu sync.Mutex

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan Event
	groups  map[int]bool // process groups started and not yet exited
	gone    bool
	quiet   bool
	exited  chan struct{}
}

// Launch starts argv — the agent, possibly behind wrappers such as `ip netns exec NS` or
// ztnc-run — and waits up to readyTimeout for the agent to report that it runs. logf receives
// whatever the wrappers print (stderr, and stdout lines that are not events). The agent runs in
// a process group of its own that Close ends.
func Launch(argv []string, readyTimeout time.Duration, logf func(format string, args ...any)) (*Client, error) {
	c := &Client{
		logf:    logf,
		pending: make(map[uint64]chan Event),
		groups:  make(map[int]bool),
		exited:  make(chan struct{}),
	}
	ready := make(chan Event, 1)
	c.pending[0] = ready
	c.stderr = &tailWriter{line: c.logLine}

	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.cmd.Stderr = c.stderr
	c.cmd.WaitDelay = 2 * time.Second
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	c.stdin = stdin
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout = pw
	err = lab.StartCmd(c.cmd)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start agent: %w", err)
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.read(pr)
	}()
	go func() {
		<-readerDone
		c.cmd.Wait()
		c.mu.Lock()
		c.gone = true
		for id, ch := range c.pending {
			close(ch)
			delete(c.pending, id)
		}
		c.mu.Unlock()
		close(c.exited)
	}()

	select {
	case ev, ok := <-ready:
		if ok && ev.Kind == EventReady {
			return c, nil
		}
		c.Close()
		return nil, fmt.Errorf("agent ended before it was ready (%s): %s", c.cmd.ProcessState, c.stderr.tail())
	case <-time.After(readyTimeout):
		c.Close()
		return nil, fmt.Errorf("agent not ready after %v: %s", readyTimeout, c.stderr.tail())
	}
}

func (c *Client) read(r io.ReadCloser) {
	defer r.Close()
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		rest, ok := strings.CutPrefix(line, Marker)
		if !ok {
			c.logLine(line)
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(rest), &ev); err != nil {
			c.logLine("bad event: " + line)
			continue
		}
		c.mu.Lock()
		ch := c.pending[ev.ID]
		switch ev.Kind {
		case EventStarted:
			c.groups[ev.Pid] = true
		case EventReady, EventExited, EventDialed, EventError:
			delete(c.pending, ev.ID)
		}
		c.mu.Unlock()
		if ch != nil {
			ch <- ev
		}
	}
}

func (c *Client) logLine(line string) {
	c.mu.Lock()
	quiet := c.quiet
	c.mu.Unlock()
	if !quiet {
		c.logf("%s", line)
	}
}

// send registers a channel for req's events and writes req.
func (c *Client) send(req *Request) (chan Event, error) {
	ch := make(chan Event, 2)
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return nil, ErrAgentGone
	}
	c.nextID++
	req.ID = c.nextID
	c.pending[req.ID] = ch
	c.mu.Unlock()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return ch, nil
}

// Process is a program the agent started.
type Process struct {
	Pid int

	c    *Client
	id   uint64
	done chan struct{}
	exit Event
	err  error
}

// Start asks the agent to start a program (req.Op is set for the caller).
func (c *Client) Start(req Request) (*Process, error) {
	req.Op = OpStart
	ch, err := c.send(&req)
	if err != nil {
		return nil, err
	}
	var ev Event
	var ok bool
	select {
	case ev, ok = <-ch:
	case <-time.After(replyTimeout):
		return nil, fmt.Errorf("start %s: agent did not answer in %v", req.Argv[0], replyTimeout)
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("start %s: %w", req.Argv[0], ErrAgentGone)
	case ev.Kind == EventError:
		return nil, fmt.Errorf("start %s: %s", req.Argv[0], ev.Error)
	}
	p := &Process{Pid: ev.Pid, c: c, id: req.ID, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		ev, ok := <-ch
		c.mu.Lock()
		delete(c.groups, p.Pid)
		c.mu.Unlock()
		if !ok {
			p.err = ErrAgentGone
			return
		}
		p.exit = ev
		switch {
		case ev.Signal != 0:
			p.err = fmt.Errorf("killed by %v", syscall.Signal(ev.Signal))
		case ev.Code != 0:
			p.err = fmt.Errorf("exit status %d", ev.Code)
		}
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is nil when the process exited with status 0; call it after Done.
func (p *Process) Err() error { return p.err }

// Signal sends sig to the process's group.
func (p *Process) Signal(sig syscall.Signal) error {
	_, err := p.c.send(&Request{Op: OpSignal, Target: p.id, Signal: int(sig)})
	return err
}

// Dial has the agent connect to addr over TCP, retrying until timeout: it tells when a server
// is reachable from the agent's network.
func (c *Client) Dial(addr string, timeout time.Duration) error {
	ch, err := c.send(&Request{Op: OpDial, Addr: addr, Timeout: timeout})
	if err != nil {
		return err
	}
	var ev Event
	var ok bool
	select {
	case ev, ok = <-ch:
	case <-time.After(timeout + replyTimeout):
		return fmt.Errorf("dial %s: agent did not answer in %v", addr, timeout+replyTimeout)
	}
	switch {
	case !ok:
		return fmt.Errorf("dial %s: %w", addr, ErrAgentGone)
	case ev.Kind == EventError:
		return errors.New(ev.Error)
	}
	return nil
}

// Close closes the agent's stdin, which makes it end its programs and exit; if it has not
// exited after a grace period, its process group and the groups it started are killed.
// After Close, wrapper output is no longer logged.
func (c *Client) Close() error {
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(stopGrace + 5*time.Second):
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
	c.mu.Lock()
	// Programs whose exit the agent never reported (it was killed) may still run.
	for pgid := range c.groups {
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
	c.quiet = true
	c.mu.Unlock()
	if st := c.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("agent: %s", st)
	}
	return nil
}

// tailWriter passes complete lines to line and keeps the last few for error messages.
type tailWriter struct {
	line func(string)

	mu      sync.Mutex
	partial []byte
	last    []string
}

const tailLines = 20

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.partial = append(w.partial, b...)
	var lines []string
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	w.last = append(w.last, lines...)
	if n := len(w.last) - tailLines; n > 0 {
		w.last = w.last[n:]
	}
	w.mu.Unlock()
	for _, l := range lines {
		w.line(l)
	}
	return len(b), nil
}

func (w *tailWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(append(w.last, string(w.partial)), "\n")
}
