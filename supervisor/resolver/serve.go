package resolver

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/ztnc/ztnc/netstack"
)

// tcpIdle is how long a TCP client may stay silent between queries (RFC 7766 suggests
// seconds).
const tcpIdle = 10 * time.Second

// Server serves a Resolver on one stack: UDP and TCP on 127.0.0.1 and ::1, at ports the stack
// picks. The supervisor redirects the host's resolver addresses there (see Addrs), so the
// responder takes no well-known port from the programs.
type Server struct {
	r   *Resolver
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	udp []*netstack.DatagramEndpoint
	tcp []*netstack.TCPEndpoint
}

// Addrs are where a Server listens.
type Addrs struct {
	UDP4, UDP6, TCP4, TCP6 netip.AddrPort
}

// Listen starts serving r on st.
func Listen(r *Resolver, st *netstack.Stack, log *slog.Logger) (*Server, Addrs, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{r: r, log: log, ctx: ctx, cancel: cancel}
	var a Addrs
	for _, lo := range []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()} {
		v6 := lo.Is6()
		u, err := st.NewUDP(v6)
		if err == nil {
			err = u.Bind(netip.AddrPortFrom(lo, 0))
		}
		if err != nil {
			s.Close()
			return nil, a, fmt.Errorf("dns responder: udp %s: %w", lo, err)
		}
		s.udp = append(s.udp, u)
		t, err := st.NewTCP(v6)
		if err == nil {
			err = t.Bind(netip.AddrPortFrom(lo, 0))
		}
		if err == nil {
			err = t.Listen(64)
		}
		if err != nil {
			s.Close()
			return nil, a, fmt.Errorf("dns responder: tcp %s: %w", lo, err)
		}
		s.tcp = append(s.tcp, t)
		if v6 {
			a.UDP6, a.TCP6 = u.LocalAddr(), t.LocalAddr()
		} else {
			a.UDP4, a.TCP4 = u.LocalAddr(), t.LocalAddr()
		}
	}
	for _, u := range s.udp {
		s.wg.Add(1)
		go s.serveUDP(u)
	}
	for _, t := range s.tcp {
		s.wg.Add(1)
		go s.serveTCP(t)
	}
	return s, a, nil
}

// Close stops serving and waits for the server's goroutines.
func (s *Server) Close() {
	s.cancel()
	for _, u := range s.udp {
		u.Close()
	}
	for _, t := range s.tcp {
		t.Close()
	}
	s.wg.Wait()
}

func (s *Server) serveUDP(ep *netstack.DatagramEndpoint) {
	defer s.wg.Done()
	buf := make([]byte, maxMessage)
	for {
		n, _, h, err := ep.ReadFrom(buf, false)
		if err == syscall.EAGAIN {
			if waitEvents(s.ctx, ep, netstack.EventIn|netstack.EventErr|netstack.EventHUp) != nil {
				return
			}
			continue
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			continue // a pending ICMP error, reported once
		}
		q := append([]byte(nil), buf[:n]...)
		from := h.Remote
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if a := s.r.Handle(s.ctx, q, false); a != nil {
				if _, err := ep.WriteTo(a, from); err != nil {
					s.log.Debug("dns answer", "to", from, "err", err)
				}
			}
		}()
	}
}

func (s *Server) serveTCP(l *netstack.TCPEndpoint) {
	defer s.wg.Done()
	for {
		ep, err := l.Accept()
		if err == syscall.EAGAIN {
			if waitEvents(s.ctx, l, netstack.EventIn|netstack.EventErr|netstack.EventHUp) != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		c, err := spliceConn(ep)
		if err != nil {
			continue
		}
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// serveConn answers the queries of one TCP client, in order, until it closes or goes idle.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	stop := context.AfterFunc(s.ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		q, err := readFramed(c)
		if err != nil {
			return
		}
		a := s.r.Handle(s.ctx, q, true)
		if a == nil {
			return
		}
		out := make([]byte, 2+len(a))
		binary.BigEndian.PutUint16(out, uint16(len(a)))
		copy(out[2:], a)
		c.SetWriteDeadline(time.Now().Add(tcpIdle))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
