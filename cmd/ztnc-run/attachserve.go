package main

// The instance's side of ztnc-run attach: a program started by another process (the launcher,
// its parent), under the instance's filter, is supervised here, on the instance's stacks.
//
// The protocol, on the control socket:
//
//	launcher → POST /attach, Connection: Upgrade, Upgrade: ztnc-attach; body attachRequest
//	instance ← 101 Switching Protocols, once the networks are up (or 4xx/5xx {"error": ...})
//	instance → attachHello line: the filter (BPF) and the home
//	launcher   starts the program under that filter, takes the listener (pidfd_getfd)
//	launcher → attachHandover line, with SCM_RIGHTS [listener, pidfd of the program]
//	instance → {"ok": true} (supervising) or {"error": ...} (the launcher kills the program)
//	...        the connection stays open while the program runs
//	instance → {"stop": reason} when the instance stops: the launcher ends the program
//	instance → {"error": ...} when supervision failed: the launcher kills the program
//	launcher → {"exit": status} when the program and what it left behind have ended; closes
//
// The connection is the program's lifeline both ways: when it closes, the instance stops
// supervising (the program's sockets end), and the launcher ends the program.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/notify"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// attachProtocol is the Upgrade token of POST /attach.
const attachProtocol = "ztnc-attach"

// attachRequest is the body of POST /attach.
type attachRequest struct {
	Argv     []string `json:"argv"`               // for status
	Networks []string `json:"networks,omitempty"` // must be joined (and are waited for)
	Wait     string   `json:"wait,omitempty"`     // how long to wait for the networks (Go duration)
}

// attachHello is the instance's first line after 101.
type attachHello struct {
	Filter []byte `json:"filter"` // BPF, 8 bytes per instruction, native byte order
	Home   string `json:"home"`
}

// attachHandover is the launcher's line that carries the listener and the pidfd.
type attachHandover struct {
	Killable bool `json:"killable"` // the filter waits killably (notify.Listener.Killable)
}

// attachEvent is every later line, either way.
type attachEvent struct {
	OK    bool   `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
	Stop  string `json:"stop,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
	// Gone answers a hand-over whose program had already ended (it made no trapped call,
	// which would have waited): there is nothing to supervise, and the launcher reports the
	// program's exit status as usual.
	Gone bool `json:"gone,omitempty"`
}

// errProgramGone is a hand-over of a program that has already ended.
var errProgramGone = errors.New("the program has ended")

// handoverTimeout bounds the launcher's start of the program, between 101 and the hand-over.
const handoverTimeout = 30 * time.Second

// attachStopGrace is how long a stopping instance waits for its attached programs to end
// (the launcher gives SIGTERM, then SIGKILL after stopGrace) before it closes their sockets.
const attachStopGrace = 2*stopGrace + time.Second

// attacher takes the programs that ztnc-run attach starts, on the instance's networks.
type attacher struct {
	log    *slog.Logger
	inst   *instance
	ns     *netset
	filter notify.Program

	mu       sync.Mutex
	sessions map[*attachSession]bool
	stopping bool
	wg       sync.WaitGroup
}

func newAttacher(log *slog.Logger, inst *instance, ns *netset, filter notify.Program) *attacher {
	return &attacher{log: log, inst: inst, ns: ns, filter: filter, sessions: map[*attachSession]bool{}}
}

// attachSession is one attached program.
type attachSession struct {
	launcher int // pid of the program's parent: what the program leaves behind is reparented to it
	conn     *net.UnixConn
	stop     chan string
	once     sync.Once
}

func (s *attachSession) requestStop(reason string) {
	s.once.Do(func() { s.stop <- reason })
}

// serveHTTP is POST /attach.
func (at *attacher) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), attachProtocol) {
		w.Header().Set("Upgrade", attachProtocol)
		writeError(w, &apiError{http.StatusUpgradeRequired, "POST /attach is the protocol of ztnc-run attach (Upgrade: " + attachProtocol + ")"})
		return
	}
	if pid := peerPID(r); pid > 0 && at.supervises(pid) {
		// ztnc-run attach run by a program of this instance (a shell attached earlier): the
		// launcher is on the networks already, and a second filter with a listener cannot
		// be installed under the first.
		writeJSON(w, http.StatusConflict, map[string]any{"error": "already on this ztnc-run's networks", "supervised": true})
		return
	}
	var req attachRequest
	// All of the body is read, so that nothing of it is left buffered for the hand-over.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "attach request: " + err.Error()})
		return
	}
	var ids []ztaddr.NetworkID
	for _, s := range req.Networks {
		id, err := ztaddr.ParseNetworkID(s)
		if err != nil || id == 0 || len(s) != 16 {
			writeError(w, &apiError{http.StatusBadRequest, fmt.Sprintf("invalid network id %q: want 16 hex digits", s)})
			return
		}
		ids = append(ids, id)
	}
	var wait time.Duration
	if req.Wait != "" {
		d, err := time.ParseDuration(req.Wait)
		if err != nil || d < 0 {
			writeError(w, &apiError{http.StatusBadRequest, fmt.Sprintf("wait %q: want a duration", req.Wait)})
			return
		}
		wait = d
	}
	if err := at.ns.wait(r.Context(), ids, wait); err != nil {
		writeError(w, err)
		return
	}
	sv, release, err := at.ns.supervision()
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, err)
		return
	}
	s := &attachSession{conn: conn.(*net.UnixConn), stop: make(chan string, 1)}
	defer conn.Close()
	at.mu.Lock()
	if at.stopping {
		at.mu.Unlock()
		fmt.Fprintf(conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"error\":\"stopping\"}\n")
		return
	}
	at.sessions[s] = true
	at.wg.Add(1)
	at.mu.Unlock()
	defer func() {
		at.mu.Lock()
		delete(at.sessions, s)
		at.mu.Unlock()
		at.wg.Done()
	}()
	if err := at.run(s, brw, &req, sv); err != nil {
		at.log.Warn("attach", "argv", req.Argv, "err", err)
		writeLine(conn, attachEvent{Error: err.Error()})
	}
}

// run serves one attached program until its launcher leaves. An error ends the session
// (and, sent to the launcher, the program).
func (at *attacher) run(s *attachSession, brw *bufio.ReadWriter, req *attachRequest, sv *supervision) error {
	hello := attachHello{Filter: encodeFilter(at.filter), Home: at.inst.home}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + attachProtocol + "\r\n\r\n")
	if err := writeLine(brw, hello); err != nil {
		return err
	}
	if err := brw.Flush(); err != nil {
		return err
	}
	if brw.Reader.Buffered() > 0 {
		return errors.New("attach: the launcher sent data before the hand-over")
	}
	s.conn.SetReadDeadline(time.Now().Add(handoverTimeout))
	h, lfd, pidfd, err := receiveHandover(s.conn)
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	pid, err := checkHandover(lfd, pidfd)
	if errors.Is(err, errProgramGone) {
		unix.Close(lfd)
		return writeLine(s.conn, attachEvent{Gone: true})
	}
	if err != nil {
		unix.Close(lfd)
		return err
	}
	l, err := notify.NewListener(lfd)
	if err != nil {
		unix.Close(lfd)
		return err
	}
	l.Killable = h.Killable
	at.mu.Lock()
	s.launcher = parentOf(pid)
	at.mu.Unlock()
	log := at.log.With("pid", pid)
	sup, err := sv.start(l, log)
	if err != nil {
		l.Close()
		return err
	}
	defer sup.Close()
	defer at.inst.addProgram(&program{pid: pid, argv: req.Argv, sup: sup})()
	served := make(chan error, 1)
	go func() { served <- sup.Serve() }()
	if err := writeLine(s.conn, attachEvent{OK: true}); err != nil {
		return err
	}
	s.conn.SetReadDeadline(time.Time{})
	log.Info("program attached", "argv", req.Argv)

	events := make(chan attachEvent)
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		defer close(events)
		dec := json.NewDecoder(brw.Reader)
		for {
			var ev attachEvent
			if dec.Decode(&ev) != nil {
				return
			}
			select {
			case events <- ev:
			case <-ended:
				return
			}
		}
	}()
	exited := false
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				if !exited {
					log.Warn("attached program's launcher gone", "argv", req.Argv)
				}
				return nil
			}
			if ev.Exit != nil {
				exited = true
				log.Info("attached program exited", "argv", req.Argv, "status", *ev.Exit)
			}
		case err := <-served:
			if err != nil {
				return fmt.Errorf("supervisor: %w", err)
			}
			served = nil // no process under the filter; the launcher reports the end
		case reason := <-s.stop:
			if err := writeLine(s.conn, attachEvent{Stop: reason}); err != nil {
				return nil
			}
		}
	}
}

// receiveHandover reads the launcher's hand-over line and the two descriptors with it.
func receiveHandover(c *net.UnixConn) (h attachHandover, lfd, pidfd int, err error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*8))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return h, -1, -1, fmt.Errorf("attach: hand-over: %w", err)
	}
	var fds []int
	msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	switch {
	case perr != nil || flags&unix.MSG_CTRUNC != 0 || len(fds) != 2:
		err = fmt.Errorf("attach: hand-over: want a listener and a pidfd, got %d descriptors", len(fds))
	case n == 0 || buf[n-1] != '\n':
		err = errors.New("attach: hand-over: truncated message")
	default:
		err = json.Unmarshal(buf[:n], &h)
	}
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return h, -1, -1, err
	}
	return h, fds[0], fds[1], nil
}

// checkHandover checks that lfd is a seccomp listener and pidfd a process this one may
// supervise (the supervisor copies the program's fds and reads its memory, which takes
// ptrace access), and returns the program's pid.
func checkHandover(lfd, pidfd int) (int, error) {
	if link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(lfd)); link != "anon_inode:seccomp notify" {
		return 0, fmt.Errorf("attach: hand-over: not a seccomp listener (%s)", link)
	}
	return supervisablePid(pidfd)
}

// supervisablePid returns the pid of the process pidfd refers to if this one may supervise
// it; errProgramGone if it has ended.
func supervisablePid(pidfd int) (int, error) {
	pid, err := pidfdPid(pidfd)
	if err != nil {
		return 0, fmt.Errorf("attach: hand-over: %w", err)
	}
	// pidfd_getfd checks ptrace access before it looks the fd up: EBADF means allowed.
	fd, err := unix.PidfdGetfd(pidfd, math.MaxInt32, 0)
	switch {
	case err == nil:
		unix.Close(fd)
	case err == unix.EPERM:
		return 0, fmt.Errorf("attach: this ztnc-run (pid %d) may not supervise process %d: ptrace access is denied (kernel.yama.ptrace_scope, or the program runs with other credentials)", os.Getpid(), pid)
	case err == unix.ESRCH:
		return 0, fmt.Errorf("attach: process %d: %w", pid, errProgramGone)
	case err != unix.EBADF:
		return 0, fmt.Errorf("attach: pidfd_getfd: %w", err)
	}
	return pid, nil
}

// pidfdPid reads the pid a pidfd refers to (its fdinfo's Pid line; -1 once it has exited).
func pidfdPid(pidfd int) (int, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(pidfd))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			switch {
			case err != nil:
				return 0, fmt.Errorf("pidfd Pid: %q", strings.TrimSpace(v))
			case pid < 0:
				return 0, errProgramGone
			case pid == 0:
				return 0, errors.New("the program runs in a PID namespace this ztnc-run cannot see: attach from inside its PID namespace (docker exec does)")
			}
			return pid, nil
		}
	}
	return 0, errors.New("not a pidfd")
}

// supervises reports whether process pid is under one of the instance's filters: a
// descendant of this process (a run's program) or of the launcher of an attached program
// (the program's parent, and the subreaper of what it leaves behind).
func (at *attacher) supervises(pid int) bool {
	roots := map[int]bool{os.Getpid(): true}
	at.mu.Lock()
	for s := range at.sessions {
		if s.launcher > 0 {
			roots[s.launcher] = true
		}
	}
	at.mu.Unlock()
	for n := 0; pid > 1 && n < 4096; n++ {
		if roots[pid] {
			return true
		}
		pid = parentOf(pid)
	}
	return false
}

// parentOf reads a process's parent pid from /proc (0 when it is gone).
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: the fields follow the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// stop asks every attached program to end, waits for them up to timeout, then closes the
// remaining sessions (their programs lose their sockets; their launchers kill them).
func (at *attacher) stop(reason string, timeout time.Duration) {
	at.mu.Lock()
	at.stopping = true
	var ss []*attachSession
	for s := range at.sessions {
		ss = append(ss, s)
	}
	at.mu.Unlock()
	if len(ss) == 0 {
		return
	}
	at.log.Info("stopping attached programs", "count", len(ss))
	for _, s := range ss {
		s.requestStop(reason)
	}
	done := make(chan struct{})
	go func() { at.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(timeout):
	}
	at.mu.Lock()
	for s := range at.sessions {
		s.conn.Close()
	}
	at.mu.Unlock()
	<-done
}

// writeLine writes v as one JSON line.
func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// encodeFilter and decodeFilter carry a BPF program between processes of one machine.
func encodeFilter(p notify.Program) []byte {
	b := make([]byte, 8*len(p))
	for i, f := range p {
		binary.NativeEndian.PutUint16(b[8*i:], f.Code)
		b[8*i+2], b[8*i+3] = f.Jt, f.Jf
		binary.NativeEndian.PutUint32(b[8*i+4:], f.K)
	}
	return b
}

func decodeFilter(b []byte) (notify.Program, error) {
	if len(b) == 0 || len(b)%8 != 0 || len(b) > 8*math.MaxUint16 {
		return nil, fmt.Errorf("bad filter length %d", len(b))
	}
	p := make(notify.Program, len(b)/8)
	for i := range p {
		p[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[8*i:]),
			Jt:   b[8*i+2], Jf: b[8*i+3],
			K: binary.NativeEndian.Uint32(b[8*i+4:]),
		}
	}
	return p, nil
}
