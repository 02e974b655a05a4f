package netstack

import (
	"os"
	"sync"
	"time"
)

// closeDelay is how long a finished connection's socket end waits to be closed, gathering
// the ends of other connections that finish meanwhile into one batch.
const closeDelay = 10 * time.Millisecond

// closer closes the proxy's socket ends in batches, after the connection has been shut down
// (release). os.File.Close goes through the runtime's system call bookkeeping
// (entersyscall), and when the process had gone idle that wakes the runtime's monitor thread
// and sets it polling every 20 µs for the next millisecond. One close per connection did that
// for every connection when they come one at a time: ~2 monitor wake-ups per connection, and
// as many context switches, on each member.
type closer struct {
	mu    sync.Mutex
	files []*os.File
	timer *time.Timer
}

var lateCloser closer

// closeLater closes f within closeDelay.
func (c *closer) closeLater(f *os.File) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files = append(c.files, f)
	if c.timer == nil {
		c.timer = time.AfterFunc(closeDelay, c.flush)
	} else if len(c.files) == 1 {
		c.timer.Reset(closeDelay)
	}
}

func (c *closer) flush() {
	c.mu.Lock()
	files := c.files
	c.files = nil
	c.mu.Unlock()
	for _, f := range files {
		f.Close()
	}
	clear(files)
}
