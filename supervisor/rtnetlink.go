package supervisor

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// rtnetlink messages: the requests programs send to learn their interfaces (getifaddrs,
// ip addr, ip link) and the answers the supervisor builds from the virtual networks. Every
// field of a request comes from the program and is checked.

// Interface is a network interface as the programs see it in rtnetlink dumps.
type Interface struct {
	Index    int
	Name     string
	MAC      [6]byte
	MTU      int
	Loopback bool
	Addrs    []netip.Prefix
}

const (
	sizeofNlmsghdr  = 16
	sizeofNlmsgerr  = 4 + sizeofNlmsghdr
	sizeofIfinfomsg = 16
	sizeofIfaddrmsg = 8
	sizeofRtattr    = 4

	// nlDatagram bounds the answer datagrams: glibc's getifaddrs reads with a 4096-byte buffer
	// and fails on MSG_TRUNC; the kernel's dumps fill about a page (NLMSG_GOODSIZE) too.
	nlDatagram = 3776
)

// nlmsg is one netlink message of a request.
type nlmsg struct {
	typ, flags uint16
	seq, pid   uint32
	body       []byte // after the header
	raw        []byte // header and body
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// parseNetlink splits a datagram into its messages. As the kernel does, it stops at the first
// malformed one (iproute2 sends its request structure whole, with zeroes after the message);
// the messages before it stand.
func parseNetlink(b []byte) []nlmsg {
	var out []nlmsg
	for len(b) >= sizeofNlmsghdr {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		if l < sizeofNlmsghdr || l > len(b) {
			break
		}
		out = append(out, nlmsg{
			typ:   binary.NativeEndian.Uint16(b[4:]),
			flags: binary.NativeEndian.Uint16(b[6:]),
			seq:   binary.NativeEndian.Uint32(b[8:]),
			pid:   binary.NativeEndian.Uint32(b[12:]),
			body:  b[sizeofNlmsghdr:l],
			raw:   b[:l],
		})
		b = b[min(nlAlign(l), len(b)):]
	}
	return out
}

// rtattrs walks a message's attributes, calling f for each; it stops at the first malformed
// one.
func rtattrs(b []byte, f func(typ uint16, val []byte)) {
	for len(b) >= sizeofRtattr {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		if l < sizeofRtattr || l > len(b) {
			return
		}
		f(binary.NativeEndian.Uint16(b[2:])&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER), b[sizeofRtattr:l])
		b = b[min(nlAlign(l), len(b)):]
	}
}

// nlWriter builds answer datagrams of at most nlDatagram bytes each.
type nlWriter struct {
	seq, pid uint32
	out      [][]byte
	cur      []byte
}

// msg appends one message (header, fixed part, attributes).
func (w *nlWriter) msg(typ, flags uint16, fixed []byte, attrs []byte) {
	l := sizeofNlmsghdr + len(fixed) + len(attrs)
	if len(w.cur) > 0 && len(w.cur)+nlAlign(l) > nlDatagram {
		w.flush()
	}
	var h [sizeofNlmsghdr]byte
	binary.NativeEndian.PutUint32(h[0:], uint32(l))
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags)
	binary.NativeEndian.PutUint32(h[8:], w.seq)
	binary.NativeEndian.PutUint32(h[12:], w.pid)
	w.cur = append(w.cur, h[:]...)
	w.cur = append(w.cur, fixed...)
	w.cur = append(w.cur, attrs...)
	for len(w.cur)%4 != 0 {
		w.cur = append(w.cur, 0)
	}
}

func (w *nlWriter) flush() {
	if len(w.cur) > 0 {
		w.out = append(w.out, w.cur)
		w.cur = nil
	}
}

// done ends a dump (NLMSG_DONE, in a datagram of its own as the kernel sends it).
func (w *nlWriter) done() {
	w.flush()
	w.msg(unix.NLMSG_DONE, unix.NLM_F_MULTI, make([]byte, 4), nil)
	w.flush()
}

// errorMsg answers req with an error (errno 0: an acknowledgement).
func (w *nlWriter) errorMsg(req nlmsg, errno unix.Errno) {
	b := make([]byte, 4, sizeofNlmsgerr)
	binary.NativeEndian.PutUint32(b, uint32(-int32(errno)))
	b = append(b, req.raw[:sizeofNlmsghdr]...)
	w.msg(unix.NLMSG_ERROR, 0, b, nil)
	w.flush()
}

func attr(b []byte, typ uint16, val []byte) []byte {
	var h [sizeofRtattr]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(sizeofRtattr+len(val)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	b = append(b, h[:]...)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

// answerRoute answers an RTM_GETLINK or RTM_GETADDR request from ifs; ok is false for every
// other message (the kernel's business).
func answerRoute(req nlmsg, portid uint32, ifs []Interface) (reply [][]byte, ok bool) {
	w := &nlWriter{seq: req.seq, pid: portid}
	dump := req.flags&unix.NLM_F_DUMP == unix.NLM_F_DUMP
	switch req.typ {
	case unix.RTM_GETLINK:
		index, name := 0, ""
		if len(req.body) >= sizeofIfinfomsg {
			index = int(int32(binary.NativeEndian.Uint32(req.body[4:])))
			rtattrs(req.body[sizeofIfinfomsg:], func(typ uint16, val []byte) {
				if typ == unix.IFLA_IFNAME {
					name = cString(val)
				}
			})
		}
		if dump {
			for _, ifc := range ifs {
				if index == 0 || ifc.Index == index {
					linkMsg(w, ifc, unix.NLM_F_MULTI)
				}
			}
			w.done()
			break
		}
		found := false
		for _, ifc := range ifs {
			if (index != 0 && ifc.Index == index) || (index == 0 && name != "" && ifc.Name == name) {
				linkMsg(w, ifc, 0)
				w.flush()
				found = true
				break
			}
		}
		if !found {
			w.errorMsg(req, unix.ENODEV)
		} else if req.flags&unix.NLM_F_ACK != 0 {
			w.errorMsg(req, 0)
		}
	case unix.RTM_GETADDR:
		if !dump {
			w.errorMsg(req, unix.EOPNOTSUPP) // as the kernel: addresses come in dumps only
			break
		}
		family, index := uint8(unix.AF_UNSPEC), 0
		if len(req.body) >= sizeofIfaddrmsg {
			family = req.body[0]
			index = int(binary.NativeEndian.Uint32(req.body[4:]))
		} else if len(req.body) >= 1 {
			family = req.body[0] // struct rtgenmsg, as glibc's getifaddrs sends it
		}
		for _, ifc := range ifs {
			if index != 0 && ifc.Index != index {
				continue
			}
			for _, p := range ifc.Addrs {
				if (family == unix.AF_INET && !p.Addr().Is4()) || (family == unix.AF_INET6 && !p.Addr().Is6()) {
					continue
				}
				addrMsg(w, ifc, p)
			}
		}
		w.done()
	default:
		return nil, false
	}
	return w.out, true
}

// linkMsg appends an RTM_NEWLINK message for ifc.
func linkMsg(w *nlWriter, ifc Interface, flags uint16) {
	fixed := make([]byte, sizeofIfinfomsg)
	typ, ifflags := uint16(unix.ARPHRD_ETHER), uint32(unix.IFF_UP|unix.IFF_BROADCAST|unix.IFF_RUNNING|unix.IFF_MULTICAST|unix.IFF_LOWER_UP)
	operstate := byte(6) // IF_OPER_UP
	if ifc.Loopback {
		typ, ifflags, operstate = unix.ARPHRD_LOOPBACK, unix.IFF_UP|unix.IFF_LOOPBACK|unix.IFF_RUNNING|unix.IFF_LOWER_UP, 0 // IF_OPER_UNKNOWN, as Linux's lo
	}
	fixed[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint16(fixed[2:], typ)
	binary.NativeEndian.PutUint32(fixed[4:], uint32(ifc.Index))
	binary.NativeEndian.PutUint32(fixed[8:], ifflags)
	var a []byte
	a = attr(a, unix.IFLA_IFNAME, append([]byte(ifc.Name), 0))
	a = attr(a, unix.IFLA_TXQLEN, u32(1000))
	a = attr(a, unix.IFLA_OPERSTATE, []byte{operstate})
	a = attr(a, unix.IFLA_LINKMODE, []byte{0})
	a = attr(a, unix.IFLA_MTU, u32(uint32(ifc.MTU)))
	a = attr(a, unix.IFLA_GROUP, u32(0))
	a = attr(a, unix.IFLA_CARRIER, []byte{1})
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if ifc.Loopback {
		bcast = [6]byte{}
	}
	a = attr(a, unix.IFLA_ADDRESS, ifc.MAC[:])
	a = attr(a, unix.IFLA_BROADCAST, bcast[:])
	w.msg(unix.RTM_NEWLINK, flags, fixed, a)
}

// addrMsg appends an RTM_NEWADDR message for address p of ifc.
func addrMsg(w *nlWriter, ifc Interface, p netip.Prefix) {
	a := p.Addr().WithZone("")
	fixed := make([]byte, sizeofIfaddrmsg)
	fixed[0] = unix.AF_INET
	if a.Is6() {
		fixed[0] = unix.AF_INET6
	}
	fixed[1] = byte(p.Bits())
	fixed[2] = unix.IFA_F_PERMANENT
	switch {
	case a.IsLoopback():
		fixed[3] = unix.RT_SCOPE_HOST
	case a.IsLinkLocalUnicast():
		fixed[3] = unix.RT_SCOPE_LINK
	default:
		fixed[3] = unix.RT_SCOPE_UNIVERSE
	}
	binary.NativeEndian.PutUint32(fixed[4:], uint32(ifc.Index))
	var at []byte
	at = attr(at, unix.IFA_ADDRESS, a.AsSlice())
	if a.Is4() {
		at = attr(at, unix.IFA_LOCAL, a.AsSlice())
		if p.Bits() < 31 && !ifc.Loopback {
			b := a.As4()
			hostBits := uint32(1)<<(32-p.Bits()) - 1
			v := binary.BigEndian.Uint32(b[:]) | hostBits
			binary.BigEndian.PutUint32(b[:], v)
			at = attr(at, unix.IFA_BROADCAST, b[:])
		}
		at = attr(at, unix.IFA_LABEL, append([]byte(ifc.Name), 0))
	}
	at = attr(at, unix.IFA_FLAGS, u32(unix.IFA_F_PERMANENT))
	ci := make([]byte, 16) // struct ifa_cacheinfo: forever
	binary.NativeEndian.PutUint32(ci[0:], 0xffffffff)
	binary.NativeEndian.PutUint32(ci[4:], 0xffffffff)
	at = attr(at, unix.IFA_CACHEINFO, ci)
	w.msg(unix.RTM_NEWADDR, unix.NLM_F_MULTI, fixed, at)
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
