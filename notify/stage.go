package notify

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The stage is this executable re-run (/proc/self/exe) in the child: Go cannot run code between
// fork and exec, so the child starts as a copy of the supervisor, installs the filter on its
// only relevant thread, hands the listener over and then executes the program.
//
// Hand-over without trapped calls: the stage writes the listener's fd *number* to the "up" pipe
// and the parent copies the fd out of the stage with pidfd_getfd, then acknowledges on the
// "down" pipe. Pipes carry the program (length-prefixed BPF) down and, after the hand-over,
// an exec failure up; a successful exec closes the up pipe (close-on-exec) instead.
const (
	stageEnv  = "_ZTNC_NOTIFY_STAGE"
	stageUpFd = 3
	stageDnFd = 4
)

func init() {
	if os.Getenv(stageEnv) != "" {
		runStage()
	}
}

// Command is the program Start runs.
type Command struct {
	Path  string   // executable (already resolved)
	Args  []string // argv, including argv[0]
	Env   []string
	Dir   string
	Files []*os.File // the program's fds 0, 1, 2
	Sys   *syscall.SysProcAttr
}

// ExecError is the program's failed execve in the stage.
type ExecError struct {
	Path  string
	Errno unix.Errno
}

func (e *ExecError) Error() string { return fmt.Sprintf("%s: %s", e.Path, e.Errno.Error()) }

// Process is a program started under a filter.
type Process struct {
	*os.Process
	Listener *Listener
	path     string
	up       *os.File
	release  chan struct{}
}

// Start runs c with the filter prog installed and returns once the parent holds the listener.
// The program may already be trapping calls when Start returns: serve the listener, then call
// WaitExec to learn whether the program itself could be executed.
//
// The fork happens on an OS thread reserved until Release, because the kernel sends
// SysProcAttr.Pdeathsig when the forking *thread* exits.
func Start(prog Program, c Command) (*Process, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	upR, upW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer upW.Close()
	dnR, dnW, err := os.Pipe()
	if err != nil {
		upR.Close()
		return nil, err
	}
	defer dnR.Close()
	defer dnW.Close()

	files := append([]*os.File{}, c.Files...)
	for len(files) < 3 {
		files = append(files, nil)
	}
	files = append(files[:3], upW, dnR)
	args := append([]string{"ztnc-stage", c.Path}, c.Args...)
	env := append(append([]string{}, c.Env...), stageEnv+"=1")

	type started struct {
		p   *os.Process
		err error
	}
	res := make(chan started, 1)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		p, err := os.StartProcess(exe, args, &os.ProcAttr{Dir: c.Dir, Env: env, Files: files, Sys: c.Sys})
		res <- started{p, err}
		if err == nil {
			<-release
		}
		runtime.UnlockOSThread()
	}()
	st := <-res
	if st.err != nil {
		upR.Close()
		return nil, fmt.Errorf("start stage: %w", st.err)
	}
	p := &Process{Process: st.p, path: c.Path, up: upR, release: release}
	fail := func(err error) (*Process, error) {
		p.Kill()
		p.Wait()
		p.Release()
		upR.Close()
		return nil, err
	}
	upW.Close()
	dnR.Close()

	var hdr [4]byte
	binary.NativeEndian.PutUint32(hdr[:], uint32(len(prog)))
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*8)
	if _, err := dnW.Write(append(hdr[:], raw...)); err != nil {
		return fail(fmt.Errorf("stage: send filter: %w", err))
	}
	line, err := bufio.NewReader(io.LimitReader(upR, 512)).ReadString('\n')
	if err != nil {
		return fail(errors.New("stage died before installing the filter"))
	}
	kind, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	if kind != "ok" {
		return fail(errors.New(arg))
	}
	fdText, killable, _ := strings.Cut(arg, " ")
	remote, err := strconv.Atoi(fdText)
	if err != nil {
		return fail(fmt.Errorf("stage: bad reply %q", line))
	}
	pidfd, err := unix.PidfdOpen(p.Pid, 0)
	if err != nil {
		return fail(fmt.Errorf("pidfd_open (Linux 5.3+): %w", err))
	}
	lfd, err := unix.PidfdGetfd(pidfd, remote, 0)
	unix.Close(pidfd)
	if err != nil {
		if err == unix.ENOSYS {
			return fail(errors.New("kernel lacks pidfd_getfd (Linux 5.6+ required)"))
		}
		return fail(fmt.Errorf("pidfd_getfd: %w (ptrace access to the child is required, see kernel.yama.ptrace_scope)", err))
	}
	l, err := NewListener(lfd)
	if err != nil {
		unix.Close(lfd)
		return fail(err)
	}
	if _, err := dnW.Write([]byte{1}); err != nil {
		l.Close()
		return fail(fmt.Errorf("stage: ack: %w", err))
	}
	l.Killable = killable == "true"
	p.Listener = l
	return p, nil
}

// WaitExec waits until the stage has executed the program (nil) or failed to (*ExecError).
func (p *Process) WaitExec() error {
	defer p.up.Close()
	b, _ := io.ReadAll(io.LimitReader(p.up, 512))
	if len(b) == 0 {
		return nil
	}
	kind, arg, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	if n, err := strconv.Atoi(arg); kind == "exec" && err == nil {
		return &ExecError{Path: p.path, Errno: unix.Errno(n)}
	}
	return fmt.Errorf("stage: %s", arg)
}

// Release frees the OS thread reserved for Pdeathsig; call it once the program has exited.
func (p *Process) Release() {
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

// runStage is the child side. From Install on, only read, write, close, fcntl and execve run
// on this thread, none of them trapped.
func runStage() {
	runtime.LockOSThread()
	say := func(s string) { unix.Write(stageUpFd, []byte(s+"\n")) }
	die := func(s string) {
		say("err " + strings.ReplaceAll(s, "\n", " "))
		os.Exit(125)
	}
	dn := fdReader(stageDnFd)
	var hdr [4]byte
	if _, err := io.ReadFull(dn, hdr[:]); err != nil {
		die("stage: read filter: " + err.Error())
	}
	n := binary.NativeEndian.Uint32(hdr[:])
	if n == 0 || n > 1<<16 {
		die("stage: bad filter length")
	}
	prog := make(Program, n)
	if _, err := io.ReadFull(dn, unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), int(n)*8)); err != nil {
		die("stage: read filter: " + err.Error())
	}
	if len(os.Args) < 3 {
		die("stage: no program")
	}
	path, argv := os.Args[1], os.Args[2:]
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, stageEnv+"=") {
			env = append(env, kv)
		}
	}

	fd, killable, err := Install(prog)
	if err != nil {
		die(err.Error())
	}
	say("ok " + strconv.Itoa(fd) + " " + strconv.FormatBool(killable))
	var ack [1]byte
	if k, _ := unix.Read(stageDnFd, ack[:]); k != 1 {
		os.Exit(125) // the parent gave up
	}
	unix.Close(fd)
	unix.Close(stageDnFd)
	if _, err := unix.FcntlInt(stageUpFd, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		die("stage: fcntl: " + err.Error())
	}
	err = syscall.Exec(path, argv, env)
	errno, _ := err.(syscall.Errno)
	say("exec " + strconv.Itoa(int(errno)))
	if errno == unix.ENOENT {
		os.Exit(127)
	}
	os.Exit(126)
}

// fdReader reads a raw fd without an *os.File, whose finalizer could close it behind our back.
type fdReader int

func (r fdReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), b)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}
