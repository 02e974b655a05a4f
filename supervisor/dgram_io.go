package supervisor

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
)

// maxDgram bounds what one datagram can be: the largest UDP payload, plus room to notice a
// larger send (EMSGSIZE) and the IPv4 header a raw socket's reads start with.
const maxDgram = 65535 + 1

var dgramBufs = sync.Pool{New: func() any { return new([maxDgram + ipv4HeaderLen]byte) }}

// dgramMsg is a datagram taken from the program's end for a trapped receive.
type dgramMsg struct {
	data  []byte // what the program gets (at most its buffer's size)
	total int    // the datagram's full length (MSG_TRUNC)
	h     netstack.DatagramHeader
	known bool // h is the datagram's own header
}

// take receives one datagram from the program's end (pfd: a copy of it), without waiting;
// EAGAIN when none is queued. buf holds the data.
func (d *dgram) take(pfd int, size int, peek bool, buf *[maxDgram + ipv4HeaderLen]byte) (dgramMsg, error) {
	size = min(size, maxDgram+ipv4HeaderLen)
	off := 0
	if d.kind == kindRawICMP && !d.v6 {
		off = ipv4HeaderLen
	}
	n, total, h, known, err := d.ep.ReadQueued(pfd, buf[off:off+max(size-off, 0)], peek)
	if err != nil {
		return dgramMsg{}, err
	}
	m := dgramMsg{data: buf[off : off+n], total: total, h: h, known: known}
	if d.kind == kindRawICMP {
		d.mu.Lock()
		id, ok := d.rawID, d.hasRaw
		d.mu.Unlock()
		if ok {
			setEchoID(m.data, id)
		}
		if off > 0 {
			putIPv4Header(buf[:off], &m, d.ep.LocalAddr().Addr())
			m.total += off
			m.data = buf[:min(off+n, size)]
		}
	}
	return m, nil
}

// source returns the address a received datagram came from, as the program sees it.
func (d *dgram) source(m *dgramMsg) netip.AddrPort {
	if m.known {
		return d.s.redirectIn(d.kind == kindUDP, m.h.Remote)
	}
	if peer, err := d.peer(); err == nil {
		return peer
	}
	return netip.AddrPort{}
}

// receiver runs one trapped receive: once at once, and, when nothing is queued and the call
// would block, again from a goroutine each time P becomes readable (until SO_RCVTIMEO, a
// signal, or the call's end). The receive function gets a copy of P and must not keep it.
func (c *call) receiver(pc **progEnd, block bool, recv func(pfd int) (int64, error)) (int64, error) {
	v, err := recv((*pc).fd)
	if err != unix.EAGAIN || !block {
		return v, err
	}
	p := *pc
	*pc = nil
	deadline := sockTimeout(p.fd, unix.SO_RCVTIMEO)
	c.s.goSafe(func() {
		defer p.close()
		for {
			if over, _ := c.endWait(c.waitFD(p.fd, deadline), unix.EAGAIN); over {
				return
			}
			v, err := recv(p.fd)
			if err == unix.EAGAIN {
				continue // another reader took it
			}
			c.answer(v, err)
			return
		}
	})
	return 0, errAnswered
}

// sockTimeout returns the deadline of SO_RCVTIMEO or SO_SNDTIMEO as set on P (zero: none).
func sockTimeout(pfd, name int) time.Time {
	tv, err := unix.GetsockoptTimeval(pfd, unix.SOL_SOCKET, name)
	if err != nil {
		return time.Time{}
	}
	if d := time.Duration(tv.Nano()); d > 0 {
		return time.Now().Add(d)
	}
	return time.Time{}
}

// blocking reports whether a receive or send waits: the socket is blocking and the flags do
// not say MSG_DONTWAIT.
func blocking(p *progEnd, flags int) bool {
	return flags&unix.MSG_DONTWAIT == 0 && !p.nonblocking()
}

// recvfrom emulates recvfrom(2) with an address (recvfrom without one is not trapped).
func (d *dgram) recvfrom(c *call, pc **progEnd) (int64, error) {
	bufAddr, size, flags := c.Args[1], int(min(c.Args[2], maxRW)), int(int32(c.Args[3]))
	if flags&unix.MSG_ERRQUEUE != 0 {
		return 0, unix.EAGAIN // no queued errors: they are reported as the errors of calls
	}
	return c.receiver(pc, blocking(*pc, flags), func(pfd int) (int64, error) {
		buf := dgramBufs.Get().(*[maxDgram + ipv4HeaderLen]byte)
		defer dgramBufs.Put(buf)
		m, err := d.take(pfd, size, flags&unix.MSG_PEEK != 0, buf)
		if err != nil {
			return 0, err
		}
		if err := c.write(bufAddr, m.data); err != nil {
			return 0, err
		}
		if err := c.writeSockaddr(c.Args[4], c.Args[5], encodeSockaddr(d.source(&m), d.v6)); err != nil {
			return 0, err
		}
		if flags&unix.MSG_TRUNC != 0 {
			return int64(m.total), nil
		}
		return int64(len(m.data)), nil
	})
}

// recvmsg emulates recvmsg(2).
func (d *dgram) recvmsg(c *call, pc **progEnd) (int64, error) {
	flags := int(int32(c.Args[2]))
	if flags&unix.MSG_ERRQUEUE != 0 {
		return 0, unix.EAGAIN
	}
	return c.receiver(pc, blocking(*pc, flags), func(pfd int) (int64, error) {
		return d.recvOne(c, c.Args[1], flags, pfd)
	})
}

// recvOne receives one datagram into the struct msghdr at addr.
func (d *dgram) recvOne(c *call, addr uint64, flags, pfd int) (int64, error) {
	m, err := c.readMsghdr(addr)
	if err != nil {
		return 0, err
	}
	segs, size, err := c.readIovecs(&m)
	if err != nil {
		return 0, err
	}
	buf := dgramBufs.Get().(*[maxDgram + ipv4HeaderLen]byte)
	defer dgramBufs.Put(buf)
	msg, err := d.take(pfd, size, flags&unix.MSG_PEEK != 0, buf)
	if err != nil {
		return 0, err
	}
	if err := c.scatter(segs, msg.data); err != nil {
		return 0, err
	}
	if m.name != 0 {
		sa := encodeSockaddr(d.source(&msg), d.v6)
		if err := c.write(m.name, sa[:min(int(m.namelen), len(sa))]); err != nil {
			return 0, err
		}
		if err := c.writeUint32(addr+msghdrNamelenOff, uint32(len(sa))); err != nil {
			return 0, err
		}
	}
	var outFlags uint32
	if len(msg.data) < msg.total {
		outFlags |= unix.MSG_TRUNC
	}
	w := cmsgWriter{limit: int(min(m.controllen, maxOptLen))}
	if m.control == 0 {
		w.limit = 0
	}
	d.controlMessages(&w, &msg)
	if w.trunc {
		outFlags |= unix.MSG_CTRUNC
	}
	if len(w.buf) > 0 {
		if err := c.write(m.control, w.buf); err != nil {
			return 0, err
		}
	}
	var tail [16]byte // msg_controllen, msg_flags
	binary.NativeEndian.PutUint64(tail[0:], uint64(len(w.buf)))
	binary.NativeEndian.PutUint32(tail[8:], outFlags)
	if err := c.write(addr+msghdrControllenOff, tail[:12]); err != nil {
		return 0, err
	}
	if flags&unix.MSG_TRUNC != 0 {
		return int64(msg.total), nil
	}
	return int64(len(msg.data)), nil
}

// controlMessages adds the control messages the program asked for, in Linux's order:
// timestamps, then the IP level's (PKTINFO, TTL, TOS) or the IPv6 level's.
func (d *dgram) controlMessages(w *cmsgWriter, m *dgramMsg) {
	d.mu.Lock()
	r := d.recv
	d.mu.Unlock()
	if w.limit == 0 || r == (recvOpts{}) {
		if r != (recvOpts{}) && w.limit == 0 {
			w.trunc = true
		}
		return
	}
	now := time.Now()
	if r.timestamp != 0 {
		var b [16]byte
		binary.NativeEndian.PutUint64(b[0:], uint64(now.Unix()))
		binary.NativeEndian.PutUint64(b[8:], uint64(now.Nanosecond()/1000))
		w.add(unix.SOL_SOCKET, int32(r.timestamp), b[:])
	}
	if r.timestampNS != 0 {
		var b [16]byte
		binary.NativeEndian.PutUint64(b[0:], uint64(now.Unix()))
		binary.NativeEndian.PutUint64(b[8:], uint64(now.Nanosecond()))
		w.add(unix.SOL_SOCKET, int32(r.timestampNS), b[:])
	}
	local := m.h.Local
	ifindex := m.h.IfIndex
	if !m.known {
		local = d.ep.LocalAddr().Addr()
		ifindex = uint32(netstack.LinkIndex)
	}
	// IPv4 datagrams (v4-mapped on dual-stack sockets) get IP-level messages, and on an IPv6
	// socket IPV6_PKTINFO too, with the v4-mapped address (Linux's
	// ip6_datagram_recv_common_ctl).
	if v4 := !d.v6 || local.Is4In6() || m.h.Remote.Addr().Is4In6(); v4 {
		if r.pktinfo {
			var b [12]byte // struct in_pktinfo
			binary.NativeEndian.PutUint32(b[0:], ifindex)
			spec := d.s.specDst(local.Unmap(), ifindex).As4()
			copy(b[4:8], spec[:])
			a := local.Unmap().As4()
			copy(b[8:12], a[:])
			w.add(unix.IPPROTO_IP, unix.IP_PKTINFO, b[:])
		}
		if r.ttl && m.h.HasTTL {
			w.add(unix.IPPROTO_IP, unix.IP_TTL, intOpt(int(m.h.TTL)))
		}
		if r.tos && m.h.HasTOS {
			w.add(unix.IPPROTO_IP, unix.IP_TOS, []byte{m.h.TOS})
		}
		if d.v6 && r.pktinfo6 {
			w.add(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, in6Pktinfo(local.Unmap(), ifindex))
		}
		return
	}
	if r.pktinfo6 {
		w.add(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, in6Pktinfo(local, ifindex))
	}
	if r.hoplimit && m.h.HasTTL {
		w.add(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, intOpt(int(m.h.TTL)))
	}
	if r.tclass && m.h.HasTOS {
		w.add(unix.IPPROTO_IPV6, unix.IPV6_TCLASS, intOpt(int(m.h.TOS)))
	}
}

// in6Pktinfo is a struct in6_pktinfo (an IPv4 address as v4-mapped).
func in6Pktinfo(a netip.Addr, ifindex uint32) []byte {
	var b [20]byte
	a16 := a.As16()
	copy(b[:16], a16[:])
	binary.NativeEndian.PutUint32(b[16:], ifindex)
	return b[:]
}

// specDst is in_pktinfo's ipi_spec_dst for a datagram to dst on interface ifindex: the local
// address a reply would come from (Linux's fib_compute_spec_dst). That is dst when it is an
// address of the interface, else (broadcast, multicast) the interface's first IPv4 address.
func (s *Supervisor) specDst(dst netip.Addr, ifindex uint32) netip.Addr {
	i := int(ifindex) - netstack.LinkIndex
	if i < 0 || i >= len(s.stacks) {
		return dst // loopback
	}
	var first netip.Addr
	for _, p := range s.stacks[i].Addresses() {
		switch a := p.Addr(); {
		case a == dst:
			return dst
		case a.Is4() && !first.IsValid():
			first = a
		}
	}
	if first.IsValid() {
		return first
	}
	return dst
}

// recvmmsg emulates recvmmsg(2): the first datagram as recvmsg would wait for it, then as many
// more as are queued, up to vlen. (Linux would go on waiting for vlen datagrams on a blocking
// socket without MSG_WAITFORONE; programs that batch receives use non-blocking sockets.)
func (d *dgram) recvmmsg(c *call, pc **progEnd) (int64, error) {
	vec, vlen, flags := c.Args[1], min(c.Args[2], maxIovecs), int(int32(c.Args[3]))
	if flags&unix.MSG_ERRQUEUE != 0 {
		return 0, unix.EAGAIN
	}
	if vlen == 0 {
		return 0, nil
	}
	return c.receiver(pc, blocking(*pc, flags), func(pfd int) (int64, error) {
		received := uint64(0)
		for received < vlen {
			hdr := vec + received*sizeofMmsghdr
			n, err := d.recvOne(c, hdr, flags&^unix.MSG_WAITFORONE, pfd)
			if err != nil {
				if received > 0 && err != errAnswered {
					return int64(received), nil // an error comes with the next call, as on Linux
				}
				return 0, err
			}
			if err := c.writeUint32(hdr+mmsghdrLenOff, uint32(n)); err != nil {
				return 0, err
			}
			received++
		}
		return int64(received), nil
	})
}

// ioctl answers FIONREAD (SIOCINQ) as Linux does for UDP: the length of the first queued
// datagram, 0 if none; and the interface ioctls (see ifIoctl).
func (d *dgram) ioctl(c *call, p *progEnd) (int64, error) {
	if req := c.Args[1] & 0xffffffff; req != unix.SIOCINQ {
		return 0, d.s.ifIoctl(c, req, c.Args[2])
	}
	buf := dgramBufs.Get().(*[maxDgram + ipv4HeaderLen]byte)
	defer dgramBufs.Put(buf)
	n := 0
	m, err := d.take(p.fd, 0, true, buf)
	switch err {
	case nil:
		n = m.total
	case unix.EAGAIN:
	default:
		return 0, err
	}
	return 0, c.writeUint32(c.Args[2], uint32(n))
}

// sendto emulates sendto(2) with an address (sendto without one is not trapped).
func (d *dgram) sendto(c *call, p *progEnd) (int64, error) {
	size, flags := int(min(c.Args[2], maxRW)), int(int32(c.Args[3]))
	if err := checkOOB(flags); err != nil {
		return 0, err
	}
	b, err := c.readSockaddr(c.Args[4], c.Args[5])
	if err != nil {
		return 0, err
	}
	to, err := d.destination(b)
	if err != nil {
		return 0, err
	}
	data := make([]byte, min(size, maxDgram))
	if err := c.read(c.Args[1], data); err != nil {
		return 0, err
	}
	if size > maxDgram {
		return 0, unix.EMSGSIZE
	}
	return d.send(c, p, data, to, netstack.SendOptions{}, flags)
}

// dest is where a datagram goes: an address on the socket's stack (invalid: the connected
// peer), or one on the host's network.
type dest struct {
	ap   netip.AddrPort
	host bool
	st   *netstack.Stack // the network of ap (nil: the socket's own)
}

// destination decodes a send's address (an empty one means the connected peer) and decides
// where it goes: ENETUNREACH where the policy lets nothing go.
func (d *dgram) destination(b []byte) (dest, error) {
	if len(b) == 0 {
		return dest{}, nil
	}
	ap, unspec, err := decodeSockaddr(b, d.v6)
	if err != nil {
		return dest{}, err
	}
	if unspec {
		return dest{}, nil // Linux takes AF_UNSPEC as "no address" for UDP
	}
	ap, redirected := d.s.redirectOut(d.kind == kindUDP, ap)
	if redirected {
		return dest{ap: ap}, nil
	}
	switch kind, st := d.route(ap); kind {
	case toHost:
		return dest{ap: ap, host: true}, nil
	case unreachable:
		return dest{}, unix.ENETUNREACH
	default:
		if st != d.st {
			return dest{ap: ap, st: st}, nil
		}
	}
	return dest{ap: ap}, nil
}

// send sends one datagram for a trapped call, waiting (from a goroutine) while the stack's
// send buffer is full if the call blocks. Datagrams to the host's network go out of the
// socket's host relay.
func (d *dgram) send(c *call, p *progEnd, data []byte, dst dest, o netstack.SendOptions, flags int) (int64, error) {
	if d.sendShut.Load() {
		// Where Linux fails it: when the datagram is made, after the checks of its size and
		// destination (but before the broadcast permission, which the stack checks as it
		// sends).
		return 0, unix.EPIPE
	}
	if dst.host {
		r, err := d.hostRelay()
		if err != nil {
			return 0, err
		}
		return r.send(data, dst.ap, flags, blocking(p, flags))
	}
	if dst.st != nil {
		r, err := d.otherNet(dst.st)
		if err != nil {
			return 0, err
		}
		n, err := r.ep.WriteMsg(data, dst.ap, o)
		if err == unix.EAGAIN && blocking(p, flags) {
			err = unix.ENOBUFS
		}
		return int64(n), err
	}
	defer d.noteLocal()
	to := dst.ap
	if d.kind == kindRawICMP {
		if err := d.rawSend(data); err != nil {
			return 0, err
		}
	}
	n, err := d.ep.WriteMsg(data, to, o)
	if err != unix.EAGAIN || !blocking(p, flags) {
		return int64(n), err
	}
	deadline := sockTimeout(p.fd, unix.SO_SNDTIMEO)
	d.s.goSafe(func() {
		for {
			ready := make(chan struct{})
			var once sync.Once
			cancel := d.ep.Notify(netstack.EventOut|netstack.EventErr, func(netstack.Events) { once.Do(func() { close(ready) }) })
			if d.ep.Readiness(netstack.EventOut|netstack.EventErr) != 0 {
				once.Do(func() { close(ready) })
			}
			werr := c.block(ready, deadline)
			cancel()
			if over, _ := c.endWait(werr, unix.EAGAIN); over {
				return
			}
			n, err := d.ep.WriteMsg(data, to, o)
			if err == unix.EAGAIN {
				continue
			}
			c.answer(int64(n), err)
			return
		}
	})
	return 0, errAnswered
}

// sendmsg emulates sendmsg(2).
func (d *dgram) sendmsg(c *call, p *progEnd) (int64, error) {
	return d.sendOne(c, p, c.Args[1], int(int32(c.Args[2])))
}

func (d *dgram) sendOne(c *call, p *progEnd, addr uint64, flags int) (int64, error) {
	if err := checkOOB(flags); err != nil {
		return 0, err
	}
	m, err := c.readMsghdr(addr)
	if err != nil {
		return 0, err
	}
	var to dest
	var opts netstack.SendOptions
	name, err := c.readName(&m)
	if err != nil {
		return 0, err
	}
	if name != nil {
		if to, err = d.destination(name); err != nil {
			return 0, err
		}
	}
	gso := 0
	control, err := c.readControl(&m)
	if err != nil {
		return 0, err
	}
	if control != nil {
		cms, err := parseCmsgs(control)
		if err != nil {
			return 0, err
		}
		if opts, gso, err = sendOptions(cms); err != nil {
			return 0, err
		}
	}
	data, err := c.readDatagram(&m)
	if err != nil {
		return 0, err
	}
	if gso == 0 || len(data) <= gso || d.kind != kindUDP {
		return d.send(c, p, data, to, opts, flags)
	}
	// UDP segmentation (see udpSegment): one datagram per gso bytes, the last shorter, sent
	// as the kernel sends a segmented one, without waiting for room.
	if len(data) > gso*maxSegments {
		return 0, unix.EINVAL
	}
	sent := 0
	for sent < len(data) {
		if _, err := d.send(c, p, data[sent:min(sent+gso, len(data))], to, opts, flags|unix.MSG_DONTWAIT); err != nil {
			if sent == 0 {
				return 0, err
			}
			break
		}
		sent = min(sent+gso, len(data))
	}
	return int64(sent), nil
}

// maxSegments is how many datagrams one segmented send may make (Linux's UDP_MAX_SEGMENTS, 128 on current kernels).
const maxSegments = 128

// sendOptions reads what sendmsg's control messages ask for one send: a source address
// (IPV6_PKTINFO; IP_PKTINFO's is left to the route, see netstack.SendOptions), a TTL or hop
// limit, and a segment size (UDP_SEGMENT, 0 for none). Others (IP_TOS, ...) are accepted and
// not applied.
func sendOptions(cms []cmsg) (o netstack.SendOptions, gso int, err error) {
	for _, cm := range cms {
		switch {
		case cm.level == unix.SOL_UDP && cm.typ == udpSegment:
			if len(cm.data) < 2 {
				return o, 0, unix.EINVAL
			}
			gso = int(binary.NativeEndian.Uint16(cm.data))
		case cm.level == unix.IPPROTO_IPV6 && cm.typ == unix.IPV6_PKTINFO:
			if len(cm.data) < 20 {
				return o, 0, unix.EINVAL
			}
			if a := netip.AddrFrom16([16]byte(cm.data[:16])); !a.IsUnspecified() {
				o.From = a
			}
		case (cm.level == unix.IPPROTO_IP && cm.typ == unix.IP_TTL) || (cm.level == unix.IPPROTO_IPV6 && cm.typ == unix.IPV6_HOPLIMIT):
			if len(cm.data) < 4 {
				return o, 0, unix.EINVAL
			}
			v := int32(binary.NativeEndian.Uint32(cm.data))
			if v < -1 || v > 255 {
				return o, 0, unix.EINVAL
			}
			if v > 0 {
				o.TTL = uint8(v)
			}
		}
	}
	return o, gso, nil
}

// sendmmsg emulates sendmmsg(2): datagrams are sent until one fails; the count sent is
// returned, or the first one's error. None waits for room in the stack's send buffer (which
// drops rather than fills on a virtual link).
func (d *dgram) sendmmsg(c *call, p *progEnd) (int64, error) {
	flags := int(int32(c.Args[3]))
	return c.sendEach(func(hdr uint64) (int64, error) { return d.sendOne(c, p, hdr, flags|unix.MSG_DONTWAIT) })
}
