package supervisor

import (
	"encoding/binary"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
)

// hostRelay carries an unconnected datagram socket's traffic with the host's network. Such a
// socket may talk to virtual and host destinations alike (a server on the virtual network
// that also queries a host service), so it keeps its place on the stack and gets a host
// socket of the supervisor's beside it: datagrams the program sends to host destinations —
// trapped calls anyway, since they carry an address — go out of that socket, and what it
// receives is delivered to the program's end with its source (netstack Deliver), among the
// virtual network's datagrams. The destinations were checked by the policy before, and the
// supervisor sends exactly the bytes it checked.
//
// The host sees the relay's own port (the program's port when it bound one and the host has
// it free, else an ephemeral one); getsockname still reports the virtual one.
type hostRelay struct {
	d  *dgram
	fd int
	f  *os.File
	rc syscall.RawConn
	// raw: a ping socket's relay is a raw ICMP socket, because the host refuses ping sockets
	// (ping_group_range) and the program held CAP_NET_RAW when it made its socket: it could
	// have made a raw one, as ping does on such a host.
	// It hears every echo reply: only those with the identifiers the program sent are passed.
	raw bool
	ids sync.Map // uint16 echo identifiers sent
}

// hostRelay returns the socket's relay, made on first use.
func (d *dgram) hostRelay() (*hostRelay, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return nil, unix.EBADF
	}
	if d.relay != nil {
		return d.relay, nil
	}
	typ, proto := d.hostType()
	var bind netip.AddrPort
	if b := d.bindReq; b.IsValid() && b.Port() != 0 && (b.Addr().Unmap().IsUnspecified() || b.Addr().Unmap().IsLoopback()) {
		bind = b
	}
	fd, err := hostSocket(d.v6, typ, proto, true, d.opts, bind)
	if err != nil && bind.IsValid() {
		fd, err = hostSocket(d.v6, typ, proto, true, d.opts, netip.AddrPort{})
	}
	raw := false
	if err == unix.EACCES && d.kind == kindPing && d.rawCap {
		fd, err = hostSocket(d.v6, unix.SOCK_RAW, proto, true, nil, netip.AddrPort{})
		raw = true
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "ztnc-relay")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	r := &hostRelay{d: d, fd: fd, f: f, rc: rc, raw: raw}
	d.relay = r
	d.s.goSafe(r.receive)
	return r, nil
}

// send sends one datagram to ap on the host's network.
func (r *hostRelay) send(data []byte, ap netip.AddrPort, flags int, blocking bool) (int64, error) {
	if r.raw && len(data) >= 8 {
		r.ids.Store(binary.BigEndian.Uint16(data[4:]), true)
	}
	var n int64
	var err error
	cerr := r.rc.Write(func(fd uintptr) bool {
		n, err = hostSend(int(fd), data, nil, hostSockaddr(ap, r.d.v6), flags, blocking)
		return true
	})
	if cerr != nil {
		return 0, unix.EBADF
	}
	return n, err
}

// receive delivers what the relay receives to the program's end until the relay closes.
func (r *hostRelay) receive() {
	buf := make([]byte, maxDgram+ipv4HeaderLen)
	for {
		var n int
		var from unix.Sockaddr
		var err error
		rerr := r.rc.Read(func(fd uintptr) bool {
			n, _, _, from, err = unix.Recvmsg(int(fd), buf, nil, 0)
			return err != unix.EAGAIN
		})
		if rerr != nil {
			return // closed
		}
		if err == unix.ECONNREFUSED || err == unix.EINTR {
			continue // an ICMP error for an earlier send: unconnected sockets do not report them
		}
		if err != nil {
			r.d.s.log.Warn("host relay", "ino", r.d.ino, "err", err)
			return
		}
		data := buf[:n]
		if (r.raw || r.d.kind == kindRawICMP) && !r.d.v6 {
			// A host raw socket reads the IPv4 header too; the emulated one adds its own.
			if n < ipv4HeaderLen || int(data[0]&0xf)*4 > n {
				continue
			}
			data = data[int(data[0]&0xf)*4:]
		}
		if r.raw && !r.ownEchoReply(data) {
			continue
		}
		h := netstack.DatagramHeader{Remote: sockaddrAddrPort(from)}
		if err := r.d.ep.Deliver(h, data); err == unix.ENOTCONN {
			return // the program's end is gone
		}
	}
}

func (r *hostRelay) close() { r.f.Close() }

// ownEchoReply reports whether an ICMP message is an echo reply to one of the program's
// requests.
func (r *hostRelay) ownEchoReply(m []byte) bool {
	reply := byte(0) // ICMP echo reply
	if r.d.v6 {
		reply = 129
	}
	if len(m) < 8 || m[0] != reply {
		return false
	}
	_, ok := r.ids.Load(binary.BigEndian.Uint16(m[4:]))
	return ok
}

// sockaddrAddrPort converts a received source address.
func sockaddrAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			a = a.WithZone(itoa(sa.ZoneId))
		}
		return netip.AddrPortFrom(a, uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// netRelay carries an unconnected datagram socket's traffic with another joined network (the
// socket's endpoint lives on one stack): an endpoint of the same kind on that network's
// stack, bound to the same port where it is free there, sends what the program addresses to
// that network, and what it receives is delivered to the program's end. A wildcard bind makes
// one on every other network, so that a server receives from all of them.
type netRelay struct {
	d      *dgram
	ep     *netstack.DatagramEndpoint
	cancel func()
	mu     sync.Mutex // one drain at a time, in order
}

// otherNet returns the socket's relay to stack st, made on first use.
func (d *dgram) otherNet(st *netstack.Stack) (*netRelay, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return nil, unix.EBADF
	}
	if r := d.others[st]; r != nil {
		return r, nil
	}
	var ep *netstack.DatagramEndpoint
	var err error
	if d.kind == kindUDP {
		ep, err = st.NewUDP(d.v6)
	} else {
		ep, err = st.NewPing(d.v6)
	}
	if err != nil {
		return nil, err
	}
	for k, v := range d.opts {
		ep.SetSockOpt(k.level, k.name, v)
	}
	wildcard := netip.IPv4Unspecified()
	if d.v6 {
		wildcard = netip.IPv6Unspecified()
	}
	if port := d.ep.LocalAddr().Port(); port == 0 || ep.Bind(netip.AddrPortFrom(wildcard, port)) != nil {
		ep.Bind(netip.AddrPortFrom(wildcard, 0))
	}
	r := &netRelay{d: d, ep: ep}
	r.cancel = ep.Notify(netstack.EventIn, func(netstack.Events) { d.s.goSafe(r.drain) })
	if d.others == nil {
		d.others = map[*netstack.Stack]*netRelay{}
	}
	d.others[st] = r
	d.s.goSafe(r.drain)
	return r, nil
}

// drain delivers what the relay's endpoint has received.
func (r *netRelay) drain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	buf := dgramBufs.Get().(*[maxDgram + ipv4HeaderLen]byte)
	defer dgramBufs.Put(buf)
	for {
		n, _, h, err := r.ep.ReadFrom(buf[:maxDgram], false)
		if err == unix.ECONNREFUSED {
			continue // a pending ICMP error: unconnected sockets do not report them
		}
		if err != nil {
			return // EAGAIN: all delivered; else closed
		}
		if err := r.d.ep.Deliver(h, buf[:n]); err == unix.ENOTCONN {
			return
		}
	}
}

func (r *netRelay) close() {
	r.cancel()
	r.ep.Close()
}
