package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
)

// maxMessage is the largest DNS message (TCP's two-byte length).
const maxMessage = 65535

// HostExchange sends a DNS message to server over the host's network (the upstream of a
// Resolver whose policy allows host access).
func HostExchange(ctx context.Context, server netip.AddrPort, msg []byte, tcp bool) ([]byte, error) {
	network := "udp"
	if tcp {
		network = "tcp"
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, server.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return exchangeConn(ctx, c, msg, tcp)
}

// StackExchange returns a function that sends DNS messages over a virtual network's stack
// (for Network.Exchange: the network's own DNS servers).
func StackExchange(st *netstack.Stack) func(context.Context, netip.AddrPort, []byte, bool) ([]byte, error) {
	return func(ctx context.Context, server netip.AddrPort, msg []byte, tcp bool) ([]byte, error) {
		c, err := dialStack(ctx, st, server, tcp)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return exchangeConn(ctx, c, msg, tcp)
	}
}

// udpRetry is how long a UDP query waits for its answer before it is sent again (a lost
// datagram, or one dropped while the network resolved the server's address).
const udpRetry = time.Second

// exchangeConn writes msg and reads the answer, framed with a length on TCP; over UDP the
// query is repeated every udpRetry until ctx ends.
func exchangeConn(ctx context.Context, c net.Conn, msg []byte, tcp bool) ([]byte, error) {
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if tcp {
		return exchangeStream(c, msg)
	}
	buf := make([]byte, maxMessage)
	for {
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		retry := time.Now().Add(udpRetry)
		if hasDeadline && dl.Before(retry) {
			retry = dl
		}
		c.SetReadDeadline(retry)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() && ctx.Err() == nil {
					break // send again
				}
				return nil, err
			}
			// Ignore anything that is not the answer to this message (a stray or late reply).
			if n >= 12 && buf[0] == msg[0] && buf[1] == msg[1] {
				return buf[:n], nil
			}
		}
	}
}

func exchangeStream(c io.ReadWriter, msg []byte) ([]byte, error) {
	if len(msg) > maxMessage {
		return nil, errors.New("dns message too large")
	}
	out := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(out, uint16(len(msg)))
	copy(out[2:], msg)
	if _, err := c.Write(out); err != nil {
		return nil, err
	}
	return readFramed(c)
}

// readFramed reads one length-prefixed DNS message (RFC 1035 4.2.2).
func readFramed(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// dialStack opens a connection through the stack, as a net.Conn.
func dialStack(ctx context.Context, st *netstack.Stack, server netip.AddrPort, tcp bool) (net.Conn, error) {
	v6 := server.Addr().Is6() && !server.Addr().Is4In6()
	if !tcp {
		ep, err := st.NewUDP(v6)
		if err != nil {
			return nil, err
		}
		if err := ep.Connect(server); err != nil {
			ep.Close()
			return nil, err
		}
		return &udpConn{ep: ep, ctx: ctx}, nil
	}
	ep, err := st.NewTCP(v6)
	if err != nil {
		return nil, err
	}
	if err := ep.Connect(server); err != nil && err != syscall.EINPROGRESS {
		ep.Close()
		return nil, err
	}
	if err := waitEvents(ctx, ep, netstack.EventOut|netstack.EventErr|netstack.EventHUp); err != nil {
		ep.Abort()
		return nil, err
	}
	if e := ep.SoError(); e != 0 {
		ep.Close()
		return nil, e
	}
	return spliceConn(ep)
}

// spliceConn splices an established TCP endpoint to a socketpair and returns the other end.
func spliceConn(ep *netstack.TCPEndpoint) (net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		ep.Abort()
		return nil, err
	}
	if err := ep.Splice(os.NewFile(uintptr(fds[0]), "dns-splice")); err != nil {
		unix.Close(fds[1])
		ep.Abort()
		return nil, err
	}
	f := os.NewFile(uintptr(fds[1]), "dns-conn")
	defer f.Close()
	return net.FileConn(f)
}

type pollable interface {
	Readiness(netstack.Events) netstack.Events
	Notify(netstack.Events, func(netstack.Events)) func()
}

// waitEvents waits until p has one of events, or ctx ends.
func waitEvents(ctx context.Context, p pollable, events netstack.Events) error {
	ready := make(chan struct{}, 1)
	cancel := p.Notify(events, func(netstack.Events) {
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	defer cancel()
	if p.Readiness(events) != 0 {
		return nil
	}
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// udpConn is a connected stack UDP endpoint as a net.Conn, for one exchange.
type udpConn struct {
	net.Conn // only the methods below are used
	ep       *netstack.DatagramEndpoint
	ctx      context.Context
	deadline time.Time
}

func (c *udpConn) Write(b []byte) (int, error) { return c.ep.WriteTo(b, netip.AddrPort{}) }

func (c *udpConn) Read(b []byte) (int, error) {
	for {
		n, _, _, err := c.ep.ReadFrom(b, false)
		if err != syscall.EAGAIN {
			return n, err
		}
		ctx, cancel := c.ctx, context.CancelFunc(func() {})
		if !c.deadline.IsZero() {
			ctx, cancel = context.WithDeadline(c.ctx, c.deadline)
		}
		err = waitEvents(ctx, c.ep, netstack.EventIn|netstack.EventErr)
		cancel()
		if err == context.DeadlineExceeded && c.ctx.Err() == nil {
			return 0, os.ErrDeadlineExceeded
		}
		if err != nil {
			return 0, err
		}
	}
}

// SetReadDeadline bounds the next reads (the context bounds everything).
func (c *udpConn) SetReadDeadline(t time.Time) error { c.deadline = t; return nil }
func (c *udpConn) SetDeadline(t time.Time) error     { return nil }
func (c *udpConn) Close() error                      { c.ep.Close(); return nil }
