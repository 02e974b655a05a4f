package netstack

import "gvisor.dev/gvisor/pkg/waiter"

// Events is a set of readiness events, with Linux's poll bit values (POLLIN, POLLOUT, ...).
type Events uint32

// The events endpoints report.
const (
	EventIn    = Events(waiter.EventIn)    // readable, or a connection to accept
	EventOut   = Events(waiter.EventOut)   // writable, or connect finished
	EventErr   = Events(waiter.EventErr)   // an error is pending (SoError)
	EventHUp   = Events(waiter.EventHUp)   // both directions closed
	EventRdHUp = Events(waiter.EventRdHUp) // the peer closed its direction
)

// notifier is the readiness half that TCP, UDP and ICMP endpoints share.
type notifier struct {
	wq *waiter.Queue
	ep interface {
		Readiness(waiter.EventMask) waiter.EventMask
	}
}

// Readiness returns which of the events in mask hold now.
func (n notifier) Readiness(mask Events) Events {
	return Events(n.ep.Readiness(waiter.EventMask(mask)))
}

// Notify calls fn with the events that happen among mask until cancel is called. fn runs on a
// stack goroutine with the endpoint's wait queue locked: it must return quickly, must not
// block, and must not call cancel or Notify. Events are edge notifications: check Readiness
// after registering so as not to miss one that came before.
func (n notifier) Notify(mask Events, fn func(Events)) (cancel func()) {
	e := waiter.NewFunctionEntry(waiter.EventMask(mask), func(m waiter.EventMask) { fn(Events(m)) })
	n.wq.EventRegister(&e)
	return func() { n.wq.EventUnregister(&e) }
}
