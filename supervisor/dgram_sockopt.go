package supervisor

import (
	"golang.org/x/sys/unix"
)

// UDP segmentation offload and receive coalescing change what one send or receive means.
// Segmentation is done for what a sendmsg asks with a UDP_SEGMENT control message (trapped:
// the supervisor cuts the datagrams, see sendOne), which QUIC stacks use to send a burst of
// packets in one call, and getsockopt(UDP_SEGMENT) reads 0, which is how they tell that the
// kernel has it. The socket option that would make segmentation the default for every send,
// including a connected socket's untrapped ones, is refused, and so is receive coalescing
// (UDP_GRO), as by a kernel without them: programs fall back.
const (
	udpSegment = 103 // UDP_SEGMENT
	udpGRO     = 104 // UDP_GRO
	solRaw     = 255 // SOL_RAW (ICMP_FILTER)
)

// option answers getsockopt(2) on a datagram socket: the endpoint's value, or one remembered.
func (d *dgram) option(level, name int) ([]byte, error) {
	if d.kind == kindRawICMP && level == unix.SOL_SOCKET {
		switch name {
		case unix.SO_TYPE:
			return intOpt(unix.SOCK_RAW), nil
		}
	}
	if level == unix.SOL_UDP && name == udpSegment && d.kind == kindUDP {
		return intOpt(0), nil
	}
	if d.foreignOption(level, name) {
		return nil, unix.ENOPROTOOPT
	}
	if v, ok := fixedOption(level, name); ok {
		return v, nil
	}
	val, err := d.ep.GetSockOpt(level, name)
	if err == unix.ENOPROTOOPT {
		d.mu.Lock()
		v, ok := d.opts[optKey{level, name}]
		d.mu.Unlock()
		if ok {
			return v, nil
		}
		if v, ok := unsetDefault(optKey{level, name}, d.v6); ok {
			return intOpt(v), nil
		}
	}
	return val, err
}

// unsetDefault is Linux's default of an option the stack does not model but accepts
// (remembered, or acted on by the supervisor), so that getsockopt answers it before it is
// set, as Linux does, on datagram and stream sockets alike.
func unsetDefault(k optKey, v6 bool) (int, bool) {
	if k == (optKey{unix.IPPROTO_IP, unix.IP_MULTICAST_ALL}) && v6 {
		return 0, true // inet6_create leaves it off
	}
	v, ok := unsetDefaults[k]
	return v, ok
}

var unsetDefaults = map[optKey]int{
	{unix.IPPROTO_IP, unix.IP_RECVERR}:         0,
	{unix.IPPROTO_IPV6, unix.IPV6_RECVERR}:     0,
	{unix.SOL_SOCKET, unix.SO_TIMESTAMP_OLD}:   0,
	{unix.SOL_SOCKET, unix.SO_TIMESTAMP_NEW}:   0,
	{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_OLD}: 0,
	{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW}: 0,
	{unix.IPPROTO_IP, unix.IP_MULTICAST_ALL}:   1,
	// IP_PMTUDISC_WANT, IPV6_PMTUDISC_WANT (unless net.ipv4.ip_no_pmtu_disc).
	{unix.IPPROTO_IP, unix.IP_MTU_DISCOVER}:     1,
	{unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER}: 1,
}

// foreignOption reports an option Linux refuses on this socket with ENOPROTOOPT: another
// protocol's (TCP's), IPv6's on an IPv4 socket, or one refused on purpose (see udpSegment).
func (d *dgram) foreignOption(level, name int) bool {
	return level == unix.IPPROTO_TCP || (level == unix.IPPROTO_IPV6 && !d.v6) ||
		(level == unix.SOL_UDP && (name == udpSegment || name == udpGRO))
}

// setsockopt emulates setsockopt(2) on a datagram socket: the stack applies what it knows, the
// rest is remembered; receive timeouts are also set on P, where native reads happen; options
// that add control messages to recvmsg are noted.
func (d *dgram) setsockopt(c *call, p *progEnd) error {
	level, name := int(int32(c.Args[1])), int(int32(c.Args[2]))
	val, err := c.optval()
	if err != nil {
		return err
	}
	if err := fixedSetting(level, name); err != nil {
		return err
	}
	if d.foreignOption(level, name) {
		return unix.ENOPROTOOPT
	}
	if err := d.s.checkDevice(level, name, val); err != nil {
		return err
	}
	if onProgEnd(optKey{level, name}) {
		if err := rawSetsockopt(p.fd, level, name, val); err != nil {
			return err
		}
	}
	err = d.ep.SetSockOpt(level, name, val)
	if err != nil && err != unix.ENOPROTOOPT {
		return err
	}
	on := len(val) > 0 && !allZeroBytes(val)
	d.mu.Lock()
	defer d.mu.Unlock()
	// Every option is kept: for getsockopt where the stack does not model it, and to set
	// again on a host socket that may replace this one.
	if d.opts == nil {
		d.opts = make(map[optKey][]byte)
	}
	d.opts[optKey{level, name}] = val
	r := &d.recv
	switch level {
	case unix.IPPROTO_IP:
		switch name {
		case unix.IP_PKTINFO:
			r.pktinfo = on
		case unix.IP_RECVTTL:
			r.ttl = on
		case unix.IP_RECVTOS:
			r.tos = on
		}
	case unix.IPPROTO_IPV6:
		switch name {
		case unix.IPV6_RECVPKTINFO:
			r.pktinfo6 = on
		case unix.IPV6_RECVHOPLIMIT:
			r.hoplimit = on
		case unix.IPV6_RECVTCLASS:
			r.tclass = on
		}
	case unix.SOL_SOCKET:
		switch name {
		case unix.SO_TIMESTAMP_OLD, unix.SO_TIMESTAMP_NEW:
			r.timestamp = onName(on, name)
		case unix.SO_TIMESTAMPNS_OLD, unix.SO_TIMESTAMPNS_NEW:
			r.timestampNS = onName(on, name)
		}
	}
	return nil
}

func onName(on bool, name int) int {
	if on {
		return name
	}
	return 0
}

func allZeroBytes(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
