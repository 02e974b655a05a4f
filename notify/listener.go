package notify

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ERESTARTSYS is the kernel's internal "restart this call" error. Answering a notification with
// it makes the kernel treat the call as interrupted by the signal the thread has pending: the
// call restarts if the handler has SA_RESTART (or there is no handler) and fails with EINTR
// otherwise, exactly as a native blocking call would.
const ERESTARTSYS = unix.Errno(512)

// ErrClosed is returned by Receive after Close.
var ErrClosed = errors.New("notify: listener closed")

// ErrGone means the notification no longer exists: the trapped thread was interrupted by a
// signal (the call will come back as a new notification if it restarts) or it died.
var ErrGone = errors.New("notify: notification gone")

// Notification is one trapped system call (struct seccomp_notif).
type Notification struct {
	ID    uint64
	Pid   uint32 // thread id, in the supervisor's pid namespace
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type notifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

type notifAddFD struct {
	id         uint64
	flags      uint32
	srcfd      uint32
	newfd      uint32
	newfdFlags uint32
}

// Listener is the supervisor's end of a filter: it receives and answers notifications.
type Listener struct {
	fd   int
	file *os.File // fd in Go's network poller: Receive parks instead of blocking a thread
	rc   syscall.RawConn

	// Send is true when the kernel can inject an fd and answer in one step
	// (SECCOMP_ADDFD_FLAG_SEND, Linux 5.14). Without it AddFD injects, then answers, and an fd
	// injected into a thread that a signal interrupts in between stays open in that process.
	// With Killable no signal but a fatal one can come in between, so AddFD injects, then
	// answers, even with Send: two ioctls cost less than the signal mask that Send needs
	// around its ioctl (see addfd), ~3 µs per fd, 3 % of a server's CPU under connection churn.
	Send bool
	// Killable is true when the filter waits killably after a notification is received
	// (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, Linux 5.19): a thread's other signals then stay
	// pending until the call is answered (see SignalPending and ERESTARTSYS). Without it a signal
	// abandons the notification, which Valid then reports.
	Killable bool

	closeOnce sync.Once
	closed    atomic.Bool

	// Receive's state, kept here so that a receive allocates nothing: the poller's callback
	// (made once) fills recvN and sets recvErr.
	recvMu  sync.Mutex
	recvN   *Notification
	recvErr error
	recvFn  func(fd uintptr) bool
}

// NewListener wraps a listener fd taken from the stage and probes the kernel's ADDFD support.
func NewListener(fd int) (*Listener, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("notify: listener: %w", err)
	}
	l := &Listener{fd: fd, file: os.NewFile(uintptr(fd), "seccomp-listener")}
	rc, err := l.file.SyscallConn()
	if err != nil {
		l.file.Close()
		return nil, fmt.Errorf("notify: listener: %w", err)
	}
	l.rc = rc
	l.recvFn = l.tryReceive
	// An ADDFD for an id that does not exist fails with ENOENT once the kernel has parsed the
	// request, and with EINVAL earlier when it does not know the flags (or the ioctl).
	probe := func(flags uint32) unix.Errno {
		a := notifAddFD{id: ^uint64(0), flags: flags, srcfd: uint32(fd)}
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_ADDFD, uintptr(unsafe.Pointer(&a)))
		return e
	}
	if probe(0) != unix.ENOENT {
		l.Close()
		return nil, errors.New("kernel lacks SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9+ required)")
	}
	l.Send = probe(unix.SECCOMP_ADDFD_FLAG_SEND) == unix.ENOENT
	// Trapped thread and supervisor hand the CPU to each other on every call: ask the kernel
	// to wake the other side on the current CPU (Linux 6.6) instead of waking an idle one,
	// which on virtual machines costs tens of microseconds per call.
	unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	return l, nil
}

// File is the listener's open file, for handing it to another process (SCM_RIGHTS), which
// serves its copy with NewListener. Close closes it.
func (l *Listener) File() *os.File { return l.file }

// Close releases the listener; the filter then fails trapped calls with ENOSYS. A waiting
// Receive returns ErrClosed.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		l.file.Close()
	})
	return nil
}

// Receive waits for the next notification. It returns ErrClosed after Close and unix.EPIPE
// (wrapped) when no process uses the filter any more.
//
// The wait happens in Go's network poller, so no thread (and no scheduler P) is held while
// idle: goroutines the answer to the previous call woke (the stack's) run at once.
func (l *Listener) Receive(n *Notification) error {
	l.recvMu.Lock()
	defer l.recvMu.Unlock()
	l.recvN, l.recvErr = n, nil
	err := l.rc.Read(l.recvFn)
	l.recvN = nil
	if err != nil {
		if l.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("notify: receive: %w", err)
	}
	return l.recvErr
}

// tryReceive is the poller's callback: it receives into l.recvN if a notification is queued,
// and reports whether Receive is done (a notification, or an error in l.recvErr).
func (l *Listener) tryReceive(fd uintptr) bool {
	// The poller's readiness is edge-triggered: look at the level, and receive only when a
	// notification is queued (a receive with none queued would block the thread).
	ev, err := rawPollIn(int(fd))
	if err != nil {
		if err == unix.EINTR {
			return false
		}
		l.recvErr = fmt.Errorf("notify: poll: %w", err)
		return true
	}
	if ev&unix.POLLIN == 0 {
		if ev&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			l.recvErr = fmt.Errorf("notify: no process left: %w", unix.EPIPE)
			return true
		}
		return false
	}
	*l.recvN = Notification{}
	// POLLIN: a notification is queued, the receive does not wait.
	_, e := rawIoctl(int(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(l.recvN))
	switch e {
	case 0:
		return true
	case unix.EINTR, unix.ENOENT:
		// ENOENT: the thread was interrupted between queueing and our receive.
		return false
	default:
		l.recvErr = fmt.Errorf("notify: receive: %w", e)
		return true
	}
}

func (l *Listener) send(r *notifResp) error {
	for {
		_, e := rawIoctl(l.fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(r))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.ENOENT:
			return ErrGone
		default:
			return fmt.Errorf("notify: respond: %w", e)
		}
	}
}

// Return makes the trapped call return val.
func (l *Listener) Return(id uint64, val int64) error {
	return l.send(&notifResp{id: id, val: val})
}

// Fail makes the trapped call fail with errno (which may be ERESTARTSYS).
func (l *Listener) Fail(id uint64, errno unix.Errno) error {
	return l.send(&notifResp{id: id, error: -int32(errno)})
}

// Continue lets the kernel run the call as if it had not been trapped.
func (l *Listener) Continue(id uint64) error {
	return l.send(&notifResp{id: id, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
}

// Valid reports whether the notification still waits for an answer.
func (l *Listener) Valid(id uint64) bool {
	_, e := rawIoctl(l.fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id))
	return e == 0
}

// AddFDReturn installs a copy of fd in the trapped process at its lowest free number (with
// FD_CLOEXEC if cloexec) and makes the trapped call return that number, atomically when the
// kernel supports it. On ErrGone nothing was installed (with Send) and the call was not answered.
func (l *Listener) AddFDReturn(id uint64, fd int, cloexec bool) (int, error) {
	a := notifAddFD{id: id, srcfd: uint32(fd)}
	if cloexec {
		a.newfdFlags = unix.O_CLOEXEC
	}
	send := l.sendWithFD()
	if send {
		a.flags = unix.SECCOMP_ADDFD_FLAG_SEND
	}
	nfd, err := l.addfd(&a)
	if err != nil || send {
		return nfd, err
	}
	return nfd, l.Return(id, int64(nfd))
}

// sendWithFD reports whether an injection answers the call in the same ioctl (see Send).
func (l *Listener) sendWithFD() bool { return l.Send && !l.Killable }

// AddFDReturnAt installs a copy of fd in the trapped process at number target, replacing what
// is there like dup2 (close-on-exec if cloexec), and makes the trapped call return target,
// atomically when the kernel supports it. On ErrGone nothing was installed (with Send).
func (l *Listener) AddFDReturnAt(id uint64, fd, target int, cloexec bool) (int, error) {
	a := notifAddFD{id: id, srcfd: uint32(fd), newfd: uint32(target), flags: unix.SECCOMP_ADDFD_FLAG_SETFD}
	if cloexec {
		a.newfdFlags = unix.O_CLOEXEC
	}
	send := l.sendWithFD()
	if send {
		a.flags |= unix.SECCOMP_ADDFD_FLAG_SEND
	}
	nfd, err := l.addfd(&a)
	if err != nil || send {
		return nfd, err
	}
	return nfd, l.Return(id, int64(nfd))
}

// AddFDAt installs a copy of fd in the trapped process at number target, replacing what is
// there like dup2 (close-on-exec if cloexec). The call stays unanswered.
func (l *Listener) AddFDAt(id uint64, fd, target int, cloexec bool) error {
	a := notifAddFD{id: id, srcfd: uint32(fd), newfd: uint32(target), flags: unix.SECCOMP_ADDFD_FLAG_SETFD}
	if cloexec {
		a.newfdFlags = unix.O_CLOEXEC
	}
	_, err := l.addfd(&a)
	return err
}

func (l *Listener) addfd(a *notifAddFD) (int, error) {
	if a.flags&unix.SECCOMP_ADDFD_FLAG_SEND != 0 {
		// The kernel marks the call answered before the thread installs the fd, and a signal
		// that interrupts our wait for the installation withdraws the fd but leaves the
		// answer: the thread's call returns 0, and the restarted ioctl finds the call
		// answered (EINPROGRESS) or gone. Go's runtime signals its threads at any time
		// (preemption, SIGCHLD of the programs), so this thread takes none while it waits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var all, old unix.Sigset_t
		for i := range all.Val {
			all.Val[i] = ^uint64(0)
		}
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old); err != nil {
			return -1, fmt.Errorf("notify: add fd: block signals: %w", err)
		}
		defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	}
	for {
		r, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(l.fd), unix.SECCOMP_IOCTL_NOTIF_ADDFD, uintptr(unsafe.Pointer(a))) // raw: see rawsys.go
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		case unix.ENOENT, unix.ESRCH:
			return -1, ErrGone
		default:
			return -1, fmt.Errorf("notify: add fd: %w", e)
		}
	}
}
