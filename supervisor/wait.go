package supervisor

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/notify"
)

// errTimeout ends a wait whose SO_RCVTIMEO/SO_SNDTIMEO deadline passed.
var errTimeout = errors.New("timeout")

// Polling intervals while a blocking call waits: the thread's pending signals (killable
// filters) or the notification's validity (otherwise) are checked at these, doubling from the
// first to the last. From then on the checks of all waiting calls fall on the same instants
// (multiples of lastWaitCheck): an idle server with many threads blocked in accept wakes
// ztnc-run 50 times a second in all, not 50 times per thread.
const (
	firstWaitCheck = 500 * time.Microsecond
	lastWaitCheck  = 20 * time.Millisecond
)

// block waits on behalf of the trapped call until changed is closed. It returns
// notify.ERESTARTSYS when the thread has an unblocked signal pending (answer it with that: the
// kernel then runs the handler and restarts the call or fails it with EINTR, as for a native
// blocking call; EINTR instead when the wait has a deadline, see stillWaiting), notify.ErrGone
// when the call no longer waits (the thread died, or without a killable filter a signal
// interrupted it), errTimeout after deadline (zero: none).
func (c *call) block(changed <-chan struct{}, deadline time.Time) error {
	interval := firstWaitCheck
	t := time.NewTimer(interval)
	defer t.Stop()
	var w waitChecks
	defer w.close()
	for {
		select {
		case <-changed:
			return nil
		case <-c.s.done:
			return notify.ErrGone
		case <-t.C:
		}
		if err := c.stillWaiting(&w, deadline); err != nil {
			return err
		}
		interval = min(2*interval, lastWaitCheck)
		t.Reset(untilNextCheck(time.Now(), interval, deadline))
	}
}

// untilNextCheck is the wait before the next check: interval, or up to the next multiple of
// lastWaitCheck once interval has reached it; never past deadline (zero: none).
func untilNextCheck(now time.Time, interval time.Duration, deadline time.Time) time.Duration {
	d := interval
	if interval >= lastWaitCheck {
		d = now.Truncate(lastWaitCheck).Add(lastWaitCheck).Sub(now)
	}
	if !deadline.IsZero() {
		d = max(min(d, deadline.Sub(now)), time.Microsecond)
	}
	return d
}

// endWait decides after a blocking call's wait (block, waitFD). When the wait saw what it
// waited for (nil) the caller looks again: over is false. Otherwise the call is over: answered
// with onTimeout after SO_RCVTIMEO/SO_SNDTIMEO (told reports that the program got it), with
// ERESTARTSYS for a pending signal, with the error when the wait could not start, and not at
// all when the call has gone.
func (c *call) endWait(err error, onTimeout unix.Errno) (over, told bool) {
	switch err {
	case nil:
		return false, false
	case notify.ErrGone:
	case errTimeout:
		told = c.answer(0, onTimeout) == nil
	default:
		c.answer(0, err) // ERESTARTSYS, or an errno of the wait's set-up
	}
	return true, told
}

// waitFD waits on behalf of the trapped call until fd (a copy of the program's end) is
// readable, with block's results.
func (c *call) waitFD(fd int, deadline time.Time) error {
	return c.waitFDEvents(fd, unix.EPOLLIN, deadline)
}

// waitFDEvents is waitFD for other events (EPOLLOUT).
func (c *call) waitFDEvents(fd int, events uint32, deadline time.Time) error {
	ready, stop, err := c.s.readable.watch(fd, events)
	if err != nil {
		return err
	}
	defer stop()
	return c.block(ready, deadline)
}

// waitChecks holds what a wait's checks reuse: the thread's status file, opened at the first.
type waitChecks struct{ sigs *notify.Signals }

func (w *waitChecks) close() {
	if w.sigs != nil {
		w.sigs.Close()
	}
}

// stillWaiting checks, between two waits, whether the call should go on waiting. With a
// killable filter only a fatal signal ends the call's wait, and it shows as pending until the
// thread is gone, when its status file fails to read: so once the file is known to be the
// thread's (the call was still valid after it was opened), reading it is the whole check.
func (c *call) stillWaiting(w *waitChecks, deadline time.Time) error {
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return errTimeout
	}
	if !c.s.l.Killable {
		return c.stillValid()
	}
	if w.sigs == nil {
		sigs, err := notify.OpenSignals(c.Pid)
		if err != nil {
			if threadGone(err) {
				return notify.ErrGone
			}
			// Out of fds or memory for now (EMFILE, ENFILE, ENOMEM): the call must not be
			// dropped for that, so this check only asks whether it still waits.
			return c.stillValid()
		}
		w.sigs = sigs
		if err := c.stillValid(); err != nil { // the tid may have been another thread's by then
			return err
		}
	}
	pending, err := w.sigs.Pending()
	if err != nil {
		if threadGone(err) {
			return notify.ErrGone
		}
		return c.stillValid()
	}
	if pending {
		if !deadline.IsZero() {
			// Linux's sock_intr_errno: a socket call waiting with a timeout (SO_RCVTIMEO,
			// SO_SNDTIMEO) is never restarted after a handler, even with SA_RESTART: it fails
			// with EINTR. Restarted, it would wait its whole timeout anew after every signal, and
			// a periodic one would keep it waiting forever.
			return unix.EINTR
		}
		return notify.ERESTARTSYS
	}
	return nil
}

// stillValid is the check without the thread's status: notify.ErrGone once the call no longer
// waits.
func (c *call) stillValid() error {
	if !c.s.l.Valid(c.ID) {
		return notify.ErrGone
	}
	return nil
}

// threadGone tells the errors of a thread's status file that mean the thread has exited.
func threadGone(err error) bool { return err == unix.ENOENT || err == unix.ESRCH }

// timeout returns the deadline set by the socket's SO_RCVTIMEO or SO_SNDTIMEO (zero: none).
// sk.mu is held.
func (sk *socket) timeout(send bool) time.Time {
	names := [2]int{unix.SO_RCVTIMEO, unix.SO_RCVTIMEO_NEW}
	if send {
		names = [2]int{unix.SO_SNDTIMEO, unix.SO_SNDTIMEO_NEW}
	}
	for _, name := range names {
		v, ok := sk.opts[optKey{unix.SOL_SOCKET, name}]
		if !ok || len(v) < 16 {
			continue
		}
		tv := unix.Timeval{Sec: int64(nativeUint64(v[0:])), Usec: int64(nativeUint64(v[8:]))}
		if d := time.Duration(tv.Nano()); d > 0 {
			return time.Now().Add(d)
		}
	}
	return time.Time{}
}
