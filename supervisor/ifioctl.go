package supervisor

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// The interface ioctls (SIOCGIFCONF, SIOCGIFADDR, …) on a datagram socket: how Java's
// NetworkInterface, ifconfig and older programs list interfaces and their IPv4 addresses. They
// are answered from the same interfaces as rtnetlink dumps (Supervisor.interfaces). Only fds in
// the datagram range trap them — an AF_INET datagram socket, which these programs open for
// the purpose, lives there. (IPv6 addresses come from /proc/net/if_inet6 in such programs,
// which shows the host's.) The two that map names and indexes, SIOCGIFINDEX and SIOCGIFNAME,
// are trapped on every fd and answered on any socket: glibc's if_nametoindex and
// if_indextoname (and so getaddrinfo's "fe80::1%ztnc0" scopes) ask them on an AF_UNIX socket.

// ifIoctls are the requests answered.
var ifIoctls = []uint64{
	unix.SIOCGIFCONF, unix.SIOCGIFADDR, unix.SIOCGIFNETMASK, unix.SIOCGIFBRDADDR,
	unix.SIOCGIFFLAGS, unix.SIOCGIFMTU, unix.SIOCGIFHWADDR, unix.SIOCGIFINDEX, unix.SIOCGIFNAME,
}

// nameIndexIoctls are the interface ioctls trapped on every fd.
var nameIndexIoctls = []uint64{unix.SIOCGIFINDEX, unix.SIOCGIFNAME}

// isNameIndexIoctl reports a trapped ioctl of nameIndexIoctls'.
func isNameIndexIoctl(c *call) bool {
	return c.Nr == unix.SYS_IOCTL && slices.Contains(nameIndexIoctls, c.Args[1]&0xffffffff)
}

// nameIndexIoctl answers one of nameIndexIoctls on c's fd if it is a socket of any kind, as
// Linux answers them on any socket; the kernel runs it on anything else (ENOTTY).
func (s *Supervisor) nameIndexIoctl(c *call) error {
	cfd, err := s.tasks.GetFD(c.Pid, int(int32(c.Args[0])))
	if err != nil {
		return errContinue // no such fd: the kernel says EBADF
	}
	var st unix.Stat_t
	err = unix.Fstat(cfd, &st)
	rawClose(cfd)
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return errContinue
	}
	return s.ifIoctl(c, c.Args[1]&0xffffffff, c.Args[2])
}

const (
	sizeofIfreq   = 40 // struct ifreq: name[16], a union of 24 bytes
	sizeofIfconf  = 16 // struct ifconf: int ifc_len, a pointer
	ifreqUnionOff = 16
)

// ifIoctl answers one interface ioctl; arg is the struct's address.
func (s *Supervisor) ifIoctl(c *call, req, arg uint64) error {
	ifs := s.interfaces()
	if req == unix.SIOCGIFCONF {
		return s.ifconf(c, arg, ifs)
	}
	var r [sizeofIfreq]byte
	if err := c.read(arg, r[:]); err != nil {
		return err
	}
	var ifc *Interface
	if req == unix.SIOCGIFNAME {
		index := int(int32(binary.NativeEndian.Uint32(r[ifreqUnionOff:])))
		for i := range ifs {
			if ifs[i].Index == index {
				ifc = &ifs[i]
			}
		}
	} else {
		name := cString(r[:unix.IFNAMSIZ])
		for i := range ifs {
			if ifs[i].Name == name {
				ifc = &ifs[i]
			}
		}
	}
	if ifc == nil {
		return unix.ENODEV
	}
	u := r[ifreqUnionOff:]
	clear(u)
	v4, hasV4 := firstIPv4(ifc)
	switch req {
	case unix.SIOCGIFNAME:
		clear(r[:unix.IFNAMSIZ])
		copy(r[:unix.IFNAMSIZ-1], ifc.Name)
	case unix.SIOCGIFADDR, unix.SIOCGIFNETMASK, unix.SIOCGIFBRDADDR:
		if !hasV4 {
			return unix.EADDRNOTAVAIL
		}
		a := v4.Addr()
		switch req {
		case unix.SIOCGIFNETMASK:
			a = netip.AddrFrom4([4]byte(netMask(v4.Bits())))
		case unix.SIOCGIFBRDADDR:
			a = broadcast(v4)
		}
		copy(u, encodeSockaddr(netip.AddrPortFrom(a, 0), false))
	case unix.SIOCGIFFLAGS:
		binary.NativeEndian.PutUint16(u, uint16(ifFlags(ifc)))
	case unix.SIOCGIFMTU:
		binary.NativeEndian.PutUint32(u, uint32(ifc.MTU))
	case unix.SIOCGIFHWADDR:
		typ := uint16(unix.ARPHRD_ETHER)
		if ifc.Loopback {
			typ = unix.ARPHRD_LOOPBACK
		}
		binary.NativeEndian.PutUint16(u, typ)
		copy(u[2:], ifc.MAC[:])
	case unix.SIOCGIFINDEX:
		binary.NativeEndian.PutUint32(u, uint32(ifc.Index))
	}
	return c.write(arg, r[:])
}

// ifconf answers SIOCGIFCONF: one struct ifreq per interface with an IPv4 address, as much as
// the buffer holds; with no buffer, the length needed.
func (s *Supervisor) ifconf(c *call, arg uint64, ifs []Interface) error {
	var conf [sizeofIfconf]byte
	if err := c.read(arg, conf[:]); err != nil {
		return err
	}
	size := int(int32(binary.NativeEndian.Uint32(conf[0:])))
	buf := binary.NativeEndian.Uint64(conf[8:])
	var out []byte
	for i := range ifs {
		v4, ok := firstIPv4(&ifs[i])
		if !ok {
			continue
		}
		var r [sizeofIfreq]byte
		copy(r[:unix.IFNAMSIZ-1], ifs[i].Name)
		copy(r[ifreqUnionOff:], encodeSockaddr(netip.AddrPortFrom(v4.Addr(), 0), false))
		out = append(out, r[:]...)
	}
	if buf != 0 {
		if size < 0 {
			return unix.EINVAL
		}
		out = out[:min(len(out), size/sizeofIfreq*sizeofIfreq)]
		if err := c.write(buf, out); err != nil {
			return err
		}
	}
	binary.NativeEndian.PutUint32(conf[0:], uint32(len(out)))
	return c.write(arg, conf[:4])
}

func firstIPv4(ifc *Interface) (netip.Prefix, bool) {
	for _, p := range ifc.Addrs {
		if p.Addr().Is4() {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func ifFlags(ifc *Interface) uint32 {
	if ifc.Loopback {
		return unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING | unix.IFF_LOWER_UP
	}
	return unix.IFF_UP | unix.IFF_BROADCAST | unix.IFF_RUNNING | unix.IFF_MULTICAST | unix.IFF_LOWER_UP
}

func netMask(bits int) []byte {
	m := uint32(0)
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	return binary.BigEndian.AppendUint32(nil, m)
}

// broadcast is the IPv4 broadcast address of p's subnet.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | ^binary.BigEndian.Uint32(netMask(p.Bits()))
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
