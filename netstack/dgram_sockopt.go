package netstack

import (
	"encoding/binary"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// SetSockOpt sets a socket option as setsockopt(2) would (SOL_SOCKET, IPPROTO_IP,
// IPPROTO_IPV6; multicast membership subscribes the port to the group). ENOPROTOOPT: not
// handled here.
//
// IP_PKTINFO and IPV6_RECVPKTINFO are only recorded (GetSockOpt reports them): address
// headers always carry the destination address, and the supervisor turns it into the
// control message when the program asked for it.
func (e *DatagramEndpoint) SetSockOpt(level, name int, val []byte) error {
	ops := e.ep.SocketOptions()
	switch level {
	case unix.SOL_SOCKET:
		return setSocketLevel(e.ep, name, val)
	case unix.IPPROTO_IP:
		switch name {
		case unix.IP_ADD_MEMBERSHIP, unix.IP_DROP_MEMBERSHIP:
			return e.setMembership(name == unix.IP_ADD_MEMBERSHIP, val, false)
		case unix.MCAST_JOIN_GROUP, unix.MCAST_LEAVE_GROUP:
			return e.setGroupReq(name == unix.MCAST_JOIN_GROUP, val, false)
		case unix.IP_MULTICAST_IF:
			return e.setMulticastIF4(val)
		}
		if sourceFilters(level, name) {
			return syscall.EOPNOTSUPP
		}
		v, err := dgramInt(val)
		if err != nil {
			return err
		}
		switch name {
		case unix.IP_PKTINFO:
			e.pktinfo.Store(v != 0)
		case unix.IP_RECVTOS:
			ops.SetReceiveTOS(v != 0)
		case unix.IP_RECVTTL:
			ops.SetReceiveTTL(v != 0)
		case unix.IP_MULTICAST_TTL:
			if v == -1 {
				v = 1
			}
			if v < 0 || v > 255 {
				return syscall.EINVAL
			}
			return asError(e.ep.SetSockOptInt(tcpip.MulticastTTLOption, int(v)))
		case unix.IP_MULTICAST_LOOP:
			ops.SetMulticastLoop(v != 0)
		default:
			return setIPLevel(e.ep, e.v6, level, name, val)
		}
		return nil
	case unix.IPPROTO_IPV6:
		if !e.v6 {
			return syscall.ENOPROTOOPT
		}
		switch name {
		case unix.IPV6_ADD_MEMBERSHIP, unix.IPV6_DROP_MEMBERSHIP:
			return e.setMembership(name == unix.IPV6_ADD_MEMBERSHIP, val, true)
		case unix.MCAST_JOIN_GROUP, unix.MCAST_LEAVE_GROUP:
			return e.setGroupReq(name == unix.MCAST_JOIN_GROUP, val, true)
		}
		if sourceFilters(level, name) {
			return syscall.EOPNOTSUPP
		}
		v, err := sockoptInt(val)
		if err != nil {
			return err
		}
		switch name {
		case unix.IPV6_RECVPKTINFO:
			e.pktinfo6.Store(v != 0)
		case unix.IPV6_RECVTCLASS:
			ops.SetReceiveTClass(v != 0)
		case unix.IPV6_RECVHOPLIMIT:
			ops.SetReceiveHopLimit(v != 0)
		case unix.IPV6_MULTICAST_HOPS:
			if v == -1 {
				v = 1
			}
			if v < 0 || v > 255 {
				return syscall.EINVAL
			}
			return asError(e.ep.SetSockOptInt(tcpip.MulticastTTLOption, int(v)))
		case unix.IPV6_MULTICAST_LOOP:
			if v != 0 && v != 1 {
				return syscall.EINVAL
			}
			ops.SetMulticastLoop(v != 0)
		case unix.IPV6_MULTICAST_IF:
			return asError(e.ep.SetSockOptInt(tcpip.IPv6MulticastInterfaceOption, int(v)))
		default:
			return setIPLevel(e.ep, e.v6, level, name, val)
		}
		return nil
	}
	return syscall.ENOPROTOOPT
}

// dgramInt decodes an IPPROTO_IP int option; Linux takes a single byte for these too.
func dgramInt(val []byte) (int32, error) {
	if len(val) > 0 && len(val) < 4 {
		return int32(val[0]), nil
	}
	return sockoptInt(val)
}

// sourceFilters reports the source-specific multicast options (IGMPv3/MLDv2 source filters),
// which gVisor does not have. Refused (EOPNOTSUPP, not ENOPROTOOPT, which the supervisor takes
// for an option to remember): a program that joined a group for some sources only would wait
// for datagrams that never come.
func sourceFilters(level, name int) bool {
	switch name {
	case unix.MCAST_JOIN_SOURCE_GROUP, unix.MCAST_LEAVE_SOURCE_GROUP, unix.MCAST_BLOCK_SOURCE,
		unix.MCAST_UNBLOCK_SOURCE, unix.MCAST_MSFILTER:
		return true
	case unix.IP_ADD_SOURCE_MEMBERSHIP, unix.IP_DROP_SOURCE_MEMBERSHIP, unix.IP_BLOCK_SOURCE,
		unix.IP_UNBLOCK_SOURCE, unix.IP_MSFILTER:
		return level == unix.IPPROTO_IP
	}
	return false
}

// sizeofGroupReq is struct group_req's size: an interface index, padding, a sockaddr_storage.
const sizeofGroupReq = 8 + 128

// setGroupReq joins or leaves a multicast group given as a group_req (MCAST_JOIN_GROUP,
// MCAST_LEAVE_GROUP: what golang.org/x/net's JoinGroup uses), at IPPROTO_IP (an AF_INET
// group) or IPPROTO_IPV6 (AF_INET6).
func (e *DatagramEndpoint) setGroupReq(join bool, val []byte, v6 bool) error {
	if len(val) < sizeofGroupReq {
		return syscall.EINVAL
	}
	opt := tcpip.MembershipOption{NIC: tcpip.NICID(binary.LittleEndian.Uint32(val[0:4]))}
	sa := val[8:]
	switch family := binary.LittleEndian.Uint16(sa[0:2]); {
	case v6 && family != unix.AF_INET6:
		return syscall.EADDRNOTAVAIL
	case v6:
		return e.membership(join, netip.AddrFrom16([16]byte(sa[8:24])), opt)
	case family != unix.AF_INET:
		return syscall.EINVAL
	}
	return e.membership(join, netip.AddrFrom4([4]byte(sa[4:8])), opt)
}

// setMembership joins or leaves a multicast group: ip_mreq / ip_mreqn (IPv4) or ipv6_mreq.
func (e *DatagramEndpoint) setMembership(join bool, val []byte, v6 bool) error {
	var opt tcpip.MembershipOption
	var group netip.Addr
	if v6 {
		if len(val) < 20 {
			return syscall.EINVAL
		}
		group = netip.AddrFrom16([16]byte(val[:16]))
		opt.NIC = tcpip.NICID(binary.LittleEndian.Uint32(val[16:20]))
	} else {
		if len(val) < 8 {
			return syscall.EINVAL
		}
		group = netip.AddrFrom4([4]byte(val[:4]))
		if iface := netip.AddrFrom4([4]byte(val[4:8])); !iface.IsUnspecified() {
			opt.InterfaceAddr = tcpipAddr(iface)
		}
		if len(val) >= 12 { // ip_mreqn
			opt.NIC = tcpip.NICID(binary.LittleEndian.Uint32(val[8:12]))
		}
	}
	return e.membership(join, group, opt)
}

// membership joins or leaves group with opt's interface.
func (e *DatagramEndpoint) membership(join bool, group netip.Addr, opt tcpip.MembershipOption) error {
	group = group.Unmap()
	if !group.IsMulticast() {
		return syscall.EINVAL
	}
	opt.MulticastAddr = tcpipAddr(group)
	if join {
		if err := e.ep.SetSockOpt((*tcpip.AddMembershipOption)(&opt)); err != nil {
			return errno(err)
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return syscall.EBADF
		}
		e.groups[group]++
		e.mu.Unlock()
		e.s.joinGroup(group)
		return nil
	}
	if err := e.ep.SetSockOpt((*tcpip.RemoveMembershipOption)(&opt)); err != nil {
		return errno(err)
	}
	e.mu.Lock()
	if e.groups[group] > 0 {
		e.groups[group]--
		if e.groups[group] == 0 {
			delete(e.groups, group)
		}
		e.mu.Unlock()
		e.s.leaveGroup(group)
		return nil
	}
	e.mu.Unlock()
	return nil
}

// setMulticastIF4 handles IP_MULTICAST_IF: an in_addr or an ip_mreqn.
func (e *DatagramEndpoint) setMulticastIF4(val []byte) error {
	var opt tcpip.MulticastInterfaceOption
	switch {
	case len(val) >= 12:
		opt.NIC = tcpip.NICID(binary.LittleEndian.Uint32(val[8:12]))
		if a := netip.AddrFrom4([4]byte(val[4:8])); !a.IsUnspecified() {
			opt.InterfaceAddr = tcpipAddr(a)
		}
	case len(val) >= 4:
		if a := netip.AddrFrom4([4]byte(val[:4])); !a.IsUnspecified() {
			opt.InterfaceAddr = tcpipAddr(a)
		}
	default:
		return syscall.EINVAL
	}
	if opt.NIC == 0 && opt.InterfaceAddr.Len() == 0 {
		opt.InterfaceAddr = tcpip.Address{}
	}
	return asError(e.ep.SetSockOpt(&opt))
}

// GetSockOpt reads a socket option as getsockopt(2) would, returning the whole value.
// ENOPROTOOPT: not handled here. SO_ERROR clears the pending error.
func (e *DatagramEndpoint) GetSockOpt(level, name int) ([]byte, error) {
	ops := e.ep.SocketOptions()
	switch level {
	case unix.SOL_SOCKET:
		switch name {
		case unix.SO_TYPE:
			return intValue(unix.SOCK_DGRAM), nil
		case unix.SO_PROTOCOL:
			switch {
			case !e.ping:
				return intValue(unix.IPPROTO_UDP), nil
			case e.v6:
				return intValue(unix.IPPROTO_ICMPV6), nil
			}
			return intValue(unix.IPPROTO_ICMP), nil
		case unix.SO_DOMAIN:
			if e.v6 {
				return intValue(unix.AF_INET6), nil
			}
			return intValue(unix.AF_INET), nil
		case unix.SO_ERROR:
			return intValue(int32(e.SoError())), nil
		}
		return getSocketLevel(e.ep, name)
	case unix.IPPROTO_IP:
		switch name {
		case unix.IP_PKTINFO:
			return boolValue(e.pktinfo.Load()), nil
		case unix.IP_RECVTOS:
			return boolValue(ops.GetReceiveTOS()), nil
		case unix.IP_RECVTTL:
			return boolValue(ops.GetReceiveTTL()), nil
		case unix.IP_MULTICAST_TTL:
			v, err := e.ep.GetSockOptInt(tcpip.MulticastTTLOption)
			if err != nil {
				return nil, errno(err)
			}
			return intValue(int32(v)), nil
		case unix.IP_MULTICAST_LOOP:
			return boolValue(ops.GetMulticastLoop()), nil
		case unix.IP_MULTICAST_IF:
			// The interface address set (an in_addr), 0.0.0.0 when none was.
			var opt tcpip.MulticastInterfaceOption
			if err := e.ep.GetSockOpt(&opt); err != nil {
				return nil, errno(err)
			}
			b := make([]byte, 4)
			if opt.InterfaceAddr.Len() == 4 {
				copy(b, opt.InterfaceAddr.AsSlice())
			}
			return b, nil
		}
		return getIPLevel(e.ep, e.v6, level, name)
	case unix.IPPROTO_IPV6:
		if !e.v6 {
			return nil, syscall.ENOPROTOOPT
		}
		switch name {
		case unix.IPV6_RECVPKTINFO:
			return boolValue(e.pktinfo6.Load()), nil
		case unix.IPV6_RECVTCLASS:
			return boolValue(ops.GetReceiveTClass()), nil
		case unix.IPV6_RECVHOPLIMIT:
			return boolValue(ops.GetReceiveHopLimit()), nil
		case unix.IPV6_MULTICAST_HOPS:
			v, err := e.ep.GetSockOptInt(tcpip.MulticastTTLOption)
			if err != nil {
				return nil, errno(err)
			}
			return intValue(int32(v)), nil
		case unix.IPV6_MULTICAST_LOOP:
			return boolValue(ops.GetMulticastLoop()), nil
		case unix.IPV6_MULTICAST_IF:
			v, err := e.ep.GetSockOptInt(tcpip.IPv6MulticastInterfaceOption)
			if err != nil {
				return nil, errno(err)
			}
			return intValue(int32(v)), nil
		}
		return getIPLevel(e.ep, e.v6, level, name)
	}
	return nil, syscall.ENOPROTOOPT
}
