package controller

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// identities are the zerotier-one test identities: 0 = d9d826a223 (the lab controller),
// 1 = 8604bca100, 2 = d2007d3b7d, ...
func identities(t testing.TB) []*identity.Identity {
	t.Helper()
	b, err := os.ReadFile("../testdata/zt1/identities.txt")
	if err != nil {
		t.Fatal(err)
	}
	var ids []*identity.Identity
	for _, l := range strings.Fields(string(b)) {
		id, err := identity.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// metadata1141 is what a zerotier-one 1.14.1 member sends with its request.
func metadata1141() *netconf.Dictionary {
	return netconf.RequestMetadata(12, 1, 14, 1, "linux/x86_64", "")
}

// recorder is a zt.ConfigSender that keeps what it is asked to send.
type recorder struct {
	mu     sync.Mutex
	events []sent
	more   chan struct{}
}

// sent is one SendConfig, SendError or SendRevocation call.
type sent struct {
	to        ztaddr.Address
	requestID uint64
	config    *netconf.NetworkConfig
	nwid      ztaddr.NetworkID
	code      wire.ErrorCode
	rev       *netconf.Revocation
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) add(s sent) error {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) SendConfig(to ztaddr.Address, requestID uint64, nc *netconf.NetworkConfig) error {
	// Encode and decode, as the wire would: the member sees only what the dictionary carries.
	got, err := netconf.ParseNetworkConfig(netconf.ParseDictionary(nc.Dictionary().Bytes()))
	if err != nil {
		panic("controller built a config that does not parse: " + err.Error())
	}
	return r.add(sent{to: to, requestID: requestID, config: got, nwid: nc.NetworkID})
}

func (r *recorder) SendError(to ztaddr.Address, nwid ztaddr.NetworkID, requestID uint64, code wire.ErrorCode) error {
	return r.add(sent{to: to, requestID: requestID, nwid: nwid, code: code})
}

func (r *recorder) SendRevocation(to ztaddr.Address, rev *netconf.Revocation) error {
	return r.add(sent{to: to, rev: rev, nwid: rev.NetworkID})
}

// wait returns the first event after index from that matches, failing after a few seconds.
func (r *recorder) wait(t testing.TB, from int, match func(sent) bool) (sent, int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		for i := from; i < len(r.events); i++ {
			if match(r.events[i]) {
				e := r.events[i]
				r.mu.Unlock()
				return e, i + 1
			}
		}
		r.mu.Unlock()
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("no matching event after #%d; have %d events", from, r.count())
			return sent{}, 0
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// quiet checks that nothing more was sent for a while after index from.
func (r *recorder) quiet(t testing.TB, from int, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if n := r.count(); n != from {
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("unexpected events: %+v", r.events[from:])
	}
}

// clock is a settable time for a Controller.
type clock struct {
	mu  sync.Mutex
	now int64
}

func (c *clock) get() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(ms int64) {
	c.mu.Lock()
	c.now += ms
	c.mu.Unlock()
}

// newTestController starts a controller with identity ids[0] in a fresh home, on a clock
// starting at start.
func newTestController(t testing.TB, home string, start int64) (*Controller, *recorder, *clock) {
	t.Helper()
	ids := identities(t)
	rec := newRecorder()
	c, err := New(Config{Home: home, Identity: ids[0], Sender: rec})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: start}
	c.now = clk.get
	t.Cleanup(func() { c.Close() })
	return c, rec, clk
}

// install copies a record file into a home's controller database.
func install(t testing.TB, home, src string, elem ...string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(append([]string{home, "controller.d"}, elem...)...)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
