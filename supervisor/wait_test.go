package supervisor

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/notify"
)

func TestUntilNextCheck(t *testing.T) {
	grid := time.Unix(1_000_000, 0) // a multiple of lastWaitCheck
	ms := time.Millisecond
	for _, c := range []struct {
		name     string
		now      time.Time
		interval time.Duration
		deadline time.Time
		want     time.Duration
	}{
		{"doubling", grid.Add(3 * ms), 2 * ms, time.Time{}, 2 * ms},
		{"on the grid from then on", grid.Add(5 * ms), lastWaitCheck, time.Time{}, 15 * ms},
		{"at a grid point", grid, lastWaitCheck, time.Time{}, lastWaitCheck},
		{"just before one", grid.Add(-time.Microsecond), lastWaitCheck, time.Time{}, time.Microsecond},
		{"deadline first", grid.Add(5 * ms), lastWaitCheck, grid.Add(7 * ms), 2 * ms},
		{"deadline before the interval", grid, 4 * ms, grid.Add(ms), ms},
		{"deadline passed", grid, 4 * ms, grid.Add(-ms), time.Microsecond},
	} {
		if got := untilNextCheck(c.now, c.interval, c.deadline); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestThreadGone: only the errors of an exited thread end a wait; running out of fds or
// memory while opening or reading its status must not drop the call.
func TestThreadGone(t *testing.T) {
	for _, c := range []struct {
		err  error
		gone bool
	}{
		{unix.ENOENT, true},
		{unix.ESRCH, true},
		{unix.EMFILE, false},
		{unix.ENFILE, false},
		{unix.ENOMEM, false},
		{notify.ErrGone, false},
	} {
		if got := threadGone(c.err); got != c.gone {
			t.Errorf("threadGone(%v) = %v, want %v", c.err, got, c.gone)
		}
	}
}
