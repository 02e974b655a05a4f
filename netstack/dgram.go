package netstack

import (
	"bytes"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// DatagramEndpoint is a UDP socket or an ICMP echo ("ping") socket of the stack, with Linux's
// semantics and errno values (every error is a syscall.Errno). It is safe for concurrent use.
//
// Ping sockets behave as Linux's SOCK_DGRAM/IPPROTO_ICMP(V6) sockets: what is written starts
// with an ICMP echo request header (type 8 or 128, code 0; anything else is EINVAL), whose
// identifier the stack replaces with the socket's bound "port" and whose checksum it fills
// in; reads return echo replies (ICMP header + data) for that identifier. Echo requests
// from others are answered by the stack itself.
//
// Data flows either through the methods WriteTo/ReadFrom, or, once spliced to the program's
// end of an AF_UNIX datagram socketpair, through the socket: see Splice.
type DatagramEndpoint struct {
	notifier
	s    *Stack
	ep   tcpip.Endpoint
	v6   bool
	ping bool

	// headers: datagrams delivered to the spliced socket carry a DatagramHeader.
	headers atomic.Bool
	// pktinfo, pktinfo6: the program asked for IP_PKTINFO / IPV6_RECVPKTINFO.
	pktinfo, pktinfo6 atomic.Bool

	// pending holds an error the proxy took from the endpoint (an ICMP error on a connected
	// socket, or a send that failed) until SoError reports it, as Linux keeps sk_err.
	pending atomic.Uint32

	mu     sync.Mutex
	groups map[netip.Addr]int // multicast groups joined, to undo at Close
	closed bool

	spliced atomic.Pointer[dgramSplice]
}

// NewUDP creates a UDP endpoint, IPv6 (dual-stack unless IPV6_V6ONLY) when v6.
func (s *Stack) NewUDP(v6 bool) (*DatagramEndpoint, error) {
	return s.newDatagram(v6, false)
}

// NewPing creates an ICMP echo endpoint (Linux's ping socket): ICMPv6 when v6, else ICMP.
func (s *Stack) NewPing(v6 bool) (*DatagramEndpoint, error) {
	return s.newDatagram(v6, true)
}

func (s *Stack) newDatagram(v6, ping bool) (*DatagramEndpoint, error) {
	netProto, transProto := ipv4.ProtocolNumber, udp.ProtocolNumber
	if v6 {
		netProto = ipv6.ProtocolNumber
	}
	if ping {
		transProto = icmp.ProtocolNumber4
		if v6 {
			transProto = icmp.ProtocolNumber6
		}
	}
	wq := new(waiter.Queue)
	ep, err := s.st.NewEndpoint(transProto, netProto, wq)
	if err != nil {
		return nil, errno(err)
	}
	// Always record where datagrams were sent to: address headers report it (IP_PKTINFO).
	ep.SocketOptions().SetReceivePacketInfo(true)
	if v6 {
		ep.SocketOptions().SetIPv6ReceivePacketInfo(true)
	}
	return &DatagramEndpoint{
		notifier: notifier{wq: wq, ep: ep},
		s:        s, ep: ep, v6: v6, ping: ping,
		groups: map[netip.Addr]int{},
	}, nil
}

// V6 reports whether this is an IPv6 (AF_INET6) endpoint.
func (e *DatagramEndpoint) V6() bool { return e.v6 }

// Ping reports whether this is an ICMP echo endpoint rather than UDP.
func (e *DatagramEndpoint) Ping() bool { return e.ping }

// Bind binds to a local address (for ping sockets the port is the echo identifier); port 0
// picks one. EADDRINUSE, EADDRNOTAVAIL, EINVAL as on Linux; SO_REUSEADDR/SO_REUSEPORT set
// before are honoured.
func (e *DatagramEndpoint) Bind(local netip.AddrPort) error {
	fa, err := bindAddress(e.ep, local, e.v6)
	if err != nil {
		return err
	}
	return asError(e.ep.Bind(fa))
}

// Connect sets the default destination and filters received datagrams to those from it.
// Unlike TCP it completes at once. ICMP port-unreachable messages for a connected UDP
// endpoint turn into ECONNREFUSED (SoError, EventErr).
func (e *DatagramEndpoint) Connect(remote netip.AddrPort) error {
	fa, err := destAddress(e.ep, remote, e.v6, true)
	if err != nil {
		return err
	}
	if !e.ep.SocketOptions().GetBroadcast() && e.s.isBroadcast(remote.Addr().Unmap()) {
		return syscall.EACCES // Linux checks at connect too, not only at send
	}
	return asError(e.ep.Connect(fa))
}

// Disconnect dissolves the association made by Connect (connect with AF_UNSPEC).
func (e *DatagramEndpoint) Disconnect() error {
	return asError(e.ep.Disconnect())
}

// LocalAddr returns the bound address (unspecified, port 0 when unbound).
func (e *DatagramEndpoint) LocalAddr() netip.AddrPort { return localAddr(e.ep, e.v6) }

// RemoteAddr returns the connected peer, or ENOTCONN.
func (e *DatagramEndpoint) RemoteAddr() (netip.AddrPort, error) { return remoteAddr(e.ep, e.v6) }

// SoError returns and clears the pending error (getsockopt SO_ERROR); 0 if none.
func (e *DatagramEndpoint) SoError() syscall.Errno {
	if p := e.pending.Swap(0); p != 0 {
		return syscall.Errno(p)
	}
	return soError(e.ep)
}

func (e *DatagramEndpoint) setPending(err syscall.Errno) {
	e.pending.Store(uint32(err))
	e.wq.Notify(waiter.EventErr)
}

// SetAddressHeaders chooses whether datagrams delivered to the spliced socket start with a
// DatagramHeader (source address, destination address, TOS, TTL): on for sockets the
// program uses with recvfrom/recvmsg addresses, off for the connected fast path. It applies
// to datagrams delivered after the call.
func (e *DatagramEndpoint) SetAddressHeaders(on bool) { e.headers.Store(on) }

// WriteTo sends b as one datagram to `to`, or to the connected peer when `to` is the zero
// AddrPort. EMSGSIZE, EDESTADDRREQ, EACCES (broadcast without SO_BROADCAST), ENETUNREACH,
// ECONNREFUSED (pending from an ICMP error) as on Linux; EAGAIN when the send buffer is full.
func (e *DatagramEndpoint) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	return e.WriteMsg(b, to, SendOptions{})
}

// SendOptions carries what sendmsg's control messages can ask for one datagram.
type SendOptions struct {
	// From is the source address (IPV6_PKTINFO's ipi6_addr); the zero Addr lets the route
	// choose. IPv4 sources (IP_PKTINFO's ipi_spec_dst) are always chosen by the route:
	// gVisor cannot pin them, which matters only with several IPv4 addresses on a network.
	From netip.Addr
	// TTL is the TTL or hop limit of this datagram (IP_TTL / IPV6_HOPLIMIT); 0 uses the
	// socket's.
	TTL uint8
}

// WriteMsg is WriteTo with per-datagram options (sendmsg with control messages).
func (e *DatagramEndpoint) WriteMsg(b []byte, to netip.AddrPort, o SendOptions) (int, error) {
	var opts tcpip.WriteOptions
	if to.IsValid() {
		fa, err := destAddress(e.ep, to, e.v6, false)
		if err != nil {
			return 0, err
		}
		opts.To = &fa
	}
	cm := &opts.ControlMessages
	if o.From.IsValid() && o.From.Is6() && !o.From.Is4In6() {
		cm.HasIPv6PacketInfo = true
		cm.IPv6PacketInfo = tcpip.IPv6PacketInfo{Addr: tcpipAddr(o.From.WithZone(""))}
	}
	if o.TTL != 0 {
		cm.HasTTL, cm.TTL = true, o.TTL
		cm.HasHopLimit, cm.HopLimit = true, o.TTL
	}
	n, err := e.ep.Write(bytes.NewReader(b), opts)
	if err != nil {
		return 0, errno(err)
	}
	return int(n), nil
}

// ReadFrom receives one datagram into b, or with peek leaves it queued (MSG_PEEK). It returns
// the bytes copied, the datagram's full length (larger when b was too small: MSG_TRUNC), and
// where it came from. EAGAIN when nothing is queued; a pending ICMP error is returned first.
func (e *DatagramEndpoint) ReadFrom(b []byte, peek bool) (n, total int, h DatagramHeader, err error) {
	w := fillWriter{b: b}
	res, terr := e.ep.Read(&w, tcpip.ReadOptions{Peek: peek, NeedRemoteAddr: true})
	if terr != nil {
		return 0, 0, h, errno(terr)
	}
	return w.n, res.Total, e.header(&res), nil
}

// header describes a datagram read from the endpoint.
func (e *DatagramEndpoint) header(res *tcpip.ReadResult) DatagramHeader {
	h := DatagramHeader{Remote: addrPort(res.RemoteAddr, false)}
	if e.ping {
		h.Remote = netip.AddrPortFrom(h.Remote.Addr(), 0)
	}
	cm := &res.ControlMessages
	switch {
	case cm.HasIPPacketInfo:
		h.Local = netipAddr(cm.PacketInfo.DestinationAddr, false)
		h.IfIndex = uint32(cm.PacketInfo.NIC)
	case cm.HasIPv6PacketInfo:
		h.Local = netipAddr(cm.IPv6PacketInfo.Addr, false)
		h.IfIndex = uint32(cm.IPv6PacketInfo.NIC)
	}
	if e.v6 && h.Remote.Addr().Is4() {
		// Dual-stack sockets see IPv4 peers (and their own IPv4 addresses) v4-mapped.
		h.Remote = netip.AddrPortFrom(netip.AddrFrom16(h.Remote.Addr().As16()), h.Remote.Port())
		if h.Local.Is4() {
			h.Local = netip.AddrFrom16(h.Local.As16())
		}
	}
	switch {
	case cm.HasTOS:
		h.HasTOS, h.TOS = true, cm.TOS
	case cm.HasTClass:
		h.HasTOS, h.TOS = true, uint8(cm.TClass)
	}
	switch {
	case cm.HasTTL:
		h.HasTTL, h.TTL = true, cm.TTL
	case cm.HasHopLimit:
		h.HasTTL, h.TTL = true, cm.HopLimit
	}
	return h
}

// Close closes the endpoint: the port is released and multicast groups are left. A spliced
// endpoint's proxy stops and closes its socket.
func (e *DatagramEndpoint) Close() {
	if sp := e.spliced.Load(); sp != nil {
		sp.stop()
		return
	}
	e.close()
}

func (e *DatagramEndpoint) close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	groups := e.groups
	e.groups = nil
	e.mu.Unlock()
	e.ep.Close()
	for g, n := range groups {
		for range n {
			e.s.leaveGroup(g)
		}
	}
}
