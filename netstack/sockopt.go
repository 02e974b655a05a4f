package netstack

import (
	"bytes"
	"encoding/binary"
	"math"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// Socket options follow Linux: values are native-endian C ints (little-endian on the
// architectures we build for) unless the option has its own struct; a set with a value
// shorter than the option needs is EINVAL. GetSockOpt returns the whole value; the caller
// truncates it to the program's optlen as Linux does.
//
// ENOPROTOOPT means the option is not handled here, not necessarily that Linux rejects it: the
// supervisor accepts and remembers such options itself.

// sockoptInt decodes an int option. Linux accepts a single byte for a few IP options; others
// need a full int.
func sockoptInt(val []byte) (int32, error) {
	if len(val) < 4 {
		return 0, syscall.EINVAL
	}
	return int32(binary.LittleEndian.Uint32(val)), nil
}

func intValue(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }

func boolValue(b bool) []byte {
	if b {
		return intValue(1)
	}
	return intValue(0)
}

// bufferSize applies Linux's SO_SNDBUF/SO_RCVBUF arithmetic: the value is doubled to leave
// room for bookkeeping, and clamped to the stack's limits (the *FORCE variants skip the
// maximum).
func bufferSize(v int32, min, max int64, force bool) int64 {
	n := int64(uint32(v))
	if !force && n > max {
		n = max
	}
	if n >= math.MaxInt32/2 {
		return math.MaxInt32
	}
	n *= 2
	if n < min {
		n = min
	}
	return n
}

// setSocketLevel handles SOL_SOCKET options common to all endpoint kinds.
func setSocketLevel(ep tcpip.Endpoint, name int, val []byte) error {
	ops := ep.SocketOptions()
	switch name {
	case unix.SO_LINGER:
		if len(val) < 8 {
			return syscall.EINVAL
		}
		onoff := int32(binary.LittleEndian.Uint32(val[0:4]))
		secs := int32(binary.LittleEndian.Uint32(val[4:8]))
		ops.SetLinger(tcpip.LingerOption{Enabled: onoff != 0, Timeout: time.Duration(secs) * time.Second})
		return nil
	}
	v, err := sockoptInt(val)
	if err != nil {
		return err
	}
	switch name {
	case unix.SO_REUSEADDR:
		ops.SetReuseAddress(v != 0)
	case unix.SO_REUSEPORT:
		ops.SetReusePort(v != 0)
	case unix.SO_KEEPALIVE:
		ops.SetKeepAlive(v != 0)
	case unix.SO_BROADCAST:
		ops.SetBroadcast(v != 0)
	case unix.SO_OOBINLINE:
		ops.SetOutOfBandInline(v != 0)
	case unix.SO_NO_CHECK:
		ops.SetNoChecksum(v != 0)
	case unix.SO_RCVLOWAT:
		if v < 0 {
			v = math.MaxInt32
		}
		return asError(ops.SetRcvlowat(v))
	case unix.SO_SNDBUF, unix.SO_SNDBUFFORCE:
		min, max := ops.SendBufferLimits()
		ops.SetSendBufferSize(bufferSize(v, min, max, name == unix.SO_SNDBUFFORCE), true)
	case unix.SO_RCVBUF, unix.SO_RCVBUFFORCE:
		min, max := ops.ReceiveBufferLimits()
		ops.SetReceiveBufferSize(bufferSize(v, min, max, name == unix.SO_RCVBUFFORCE), true)
	default:
		return syscall.ENOPROTOOPT
	}
	return nil
}

func getSocketLevel(ep tcpip.Endpoint, name int) ([]byte, error) {
	ops := ep.SocketOptions()
	switch name {
	case unix.SO_ERROR:
		return intValue(int32(errno(ops.GetLastError()))), nil
	case unix.SO_REUSEADDR:
		return boolValue(ops.GetReuseAddress()), nil
	case unix.SO_REUSEPORT:
		return boolValue(ops.GetReusePort()), nil
	case unix.SO_KEEPALIVE:
		return boolValue(ops.GetKeepAlive()), nil
	case unix.SO_BROADCAST:
		return boolValue(ops.GetBroadcast()), nil
	case unix.SO_OOBINLINE:
		return boolValue(ops.GetOutOfBandInline()), nil
	case unix.SO_NO_CHECK:
		return boolValue(ops.GetNoChecksum()), nil
	case unix.SO_ACCEPTCONN:
		return boolValue(ops.GetAcceptConn()), nil
	case unix.SO_RCVLOWAT:
		return intValue(ops.GetRcvlowat()), nil
	case unix.SO_SNDBUF:
		return intValue(int32(min(ops.GetSendBufferSize(), math.MaxInt32))), nil
	case unix.SO_RCVBUF:
		return intValue(int32(min(ops.GetReceiveBufferSize(), math.MaxInt32))), nil
	case unix.SO_LINGER:
		l := ops.GetLinger()
		b := boolValue(l.Enabled)
		return binary.LittleEndian.AppendUint32(b, uint32(l.Timeout/time.Second)), nil
	}
	return nil, syscall.ENOPROTOOPT
}

// setIPLevel handles IPPROTO_IP and IPPROTO_IPV6 options common to all endpoint kinds.
func setIPLevel(ep tcpip.Endpoint, v6 bool, level, name int, val []byte) error {
	if level == unix.IPPROTO_IPV6 && !v6 {
		return syscall.ENOPROTOOPT
	}
	var v int32
	switch {
	case level == unix.IPPROTO_IP && (name == unix.IP_TOS || name == unix.IP_TTL) && len(val) > 0 && len(val) < 4:
		v = int32(val[0]) // Linux takes a char for these
	default:
		var err error
		if v, err = sockoptInt(val); err != nil {
			return err
		}
	}
	switch {
	case level == unix.IPPROTO_IP && name == unix.IP_TOS:
		return asError(ep.SetSockOptInt(tcpip.IPv4TOSOption, int(uint8(v))))
	case level == unix.IPPROTO_IP && name == unix.IP_TTL:
		if v == -1 {
			v = 0 // the default
		} else if v < 1 || v > 255 {
			return syscall.EINVAL
		}
		return asError(ep.SetSockOptInt(tcpip.IPv4TTLOption, int(v)))
	case level == unix.IPPROTO_IPV6 && name == unix.IPV6_V6ONLY:
		if fa, err := ep.GetLocalAddress(); err == nil && fa.Port != 0 {
			return syscall.EINVAL // Linux refuses once bound
		}
		ep.SocketOptions().SetV6Only(v != 0)
		return nil
	case level == unix.IPPROTO_IPV6 && name == unix.IPV6_TCLASS:
		if v < -1 || v > 255 {
			return syscall.EINVAL
		}
		if v == -1 {
			v = 0
		}
		return asError(ep.SetSockOptInt(tcpip.IPv6TrafficClassOption, int(v)))
	case level == unix.IPPROTO_IPV6 && name == unix.IPV6_UNICAST_HOPS:
		if v < -1 || v > 255 {
			return syscall.EINVAL
		}
		return asError(ep.SetSockOptInt(tcpip.IPv6HopLimitOption, int(v)))
	}
	return syscall.ENOPROTOOPT
}

func getIPLevel(ep tcpip.Endpoint, v6 bool, level, name int) ([]byte, error) {
	if level == unix.IPPROTO_IPV6 && !v6 {
		return nil, syscall.ENOPROTOOPT
	}
	getInt := func(o tcpip.SockOptInt) ([]byte, error) {
		v, err := ep.GetSockOptInt(o)
		if err != nil {
			return nil, errno(err)
		}
		return intValue(int32(v)), nil
	}
	switch {
	case level == unix.IPPROTO_IP && name == unix.IP_TOS:
		return getInt(tcpip.IPv4TOSOption)
	case level == unix.IPPROTO_IP && name == unix.IP_TTL:
		v, err := ep.GetSockOptInt(tcpip.IPv4TTLOption)
		if err != nil {
			return nil, errno(err)
		}
		if v == 0 {
			v = defaultTTL
		}
		return intValue(int32(v)), nil
	case level == unix.IPPROTO_IPV6 && name == unix.IPV6_V6ONLY:
		return boolValue(ep.SocketOptions().GetV6Only()), nil
	case level == unix.IPPROTO_IPV6 && name == unix.IPV6_TCLASS:
		return getInt(tcpip.IPv6TrafficClassOption)
	case level == unix.IPPROTO_IPV6 && name == unix.IPV6_UNICAST_HOPS:
		v, err := ep.GetSockOptInt(tcpip.IPv6HopLimitOption)
		if err != nil {
			return nil, errno(err)
		}
		if v < 0 {
			v = defaultTTL
		}
		return intValue(int32(v)), nil
	}
	return nil, syscall.ENOPROTOOPT
}

// defaultTTL is what Linux reports for IP_TTL/IPV6_UNICAST_HOPS on a socket that never set
// them (gVisor's default too).
const defaultTTL = 64

// tcpCANameMax is Linux's TCP_CA_NAME_MAX: getsockopt(TCP_CONGESTION) returns that many bytes.
const tcpCANameMax = 16

// SetSockOpt sets a socket option as setsockopt(2) would (levels SOL_SOCKET, IPPROTO_TCP,
// IPPROTO_IP, IPPROTO_IPV6). ENOPROTOOPT: not handled here.
func (e *TCPEndpoint) SetSockOpt(level, name int, val []byte) error {
	switch level {
	case unix.SOL_SOCKET:
		err := setSocketLevel(e.ep, name, val)
		if err == nil && name == unix.SO_KEEPALIVE {
			if e.keepaliveUser.Or(kaEnable)&kaEnable == 0 && e.spliced.Load() != nil {
				e.restoreKeepaliveDefaults()
			}
		}
		return err
	case unix.IPPROTO_IP, unix.IPPROTO_IPV6:
		return setIPLevel(e.ep, e.v6, level, name, val)
	case unix.IPPROTO_TCP:
		err := e.setTCPLevel(name, val)
		if err == nil {
			switch name {
			case unix.TCP_KEEPIDLE:
				e.keepaliveUser.Or(kaIdle)
			case unix.TCP_KEEPINTVL:
				e.keepaliveUser.Or(kaIntvl)
			case unix.TCP_KEEPCNT:
				e.keepaliveUser.Or(kaCnt)
			}
		}
		return err
	}
	return syscall.ENOPROTOOPT
}

// restoreKeepaliveDefaults puts back Linux's keepalive timers that Splice had shortened, now
// that the program took charge of keepalive.
func (e *TCPEndpoint) restoreKeepaliveDefaults() {
	user := e.keepaliveUser.Load()
	if user&kaIdle == 0 {
		o := tcpip.KeepaliveIdleOption(linuxKeepaliveIdle * time.Second)
		e.ep.SetSockOpt(&o)
	}
	if user&kaIntvl == 0 {
		o := tcpip.KeepaliveIntervalOption(linuxKeepaliveIntvl * time.Second)
		e.ep.SetSockOpt(&o)
	}
	if user&kaCnt == 0 {
		e.ep.SetSockOptInt(tcpip.KeepaliveCountOption, linuxKeepaliveCnt)
	}
}

// proxyKeepalive returns what getsockopt shows for a keepalive setting that Splice chose
// rather than the program (ok false: the endpoint's own value is the answer).
func (e *TCPEndpoint) proxyKeepalive(level, name int) (v int32, ok bool) {
	if e.spliced.Load() == nil {
		return 0, false
	}
	user := e.keepaliveUser.Load()
	switch {
	case level == unix.SOL_SOCKET && name == unix.SO_KEEPALIVE && user&kaEnable == 0:
		return 0, true
	case level == unix.IPPROTO_TCP && name == unix.TCP_KEEPIDLE && user&(kaEnable|kaIdle) == 0:
		return linuxKeepaliveIdle, true
	case level == unix.IPPROTO_TCP && name == unix.TCP_KEEPINTVL && user&(kaEnable|kaIntvl) == 0:
		return linuxKeepaliveIntvl, true
	case level == unix.IPPROTO_TCP && name == unix.TCP_KEEPCNT && user&(kaEnable|kaCnt) == 0:
		return linuxKeepaliveCnt, true
	}
	return 0, false
}

func (e *TCPEndpoint) setTCPLevel(name int, val []byte) error {
	if name == unix.TCP_CONGESTION {
		if i := bytes.IndexByte(val, 0); i >= 0 {
			val = val[:i]
		}
		cc := tcpip.CongestionControlOption(val)
		return asError(e.ep.SetSockOpt(&cc))
	}
	v, err := sockoptInt(val)
	if err != nil {
		return err
	}
	ops := e.ep.SocketOptions()
	seconds := func(max int32) (time.Duration, error) {
		if v < 1 || v > max {
			return 0, syscall.EINVAL
		}
		return time.Duration(v) * time.Second, nil
	}
	switch name {
	case unix.TCP_NODELAY:
		e.noDelay.Store(v != 0)
	case unix.TCP_CORK:
		e.cork.Store(v != 0)
		ops.SetCorkOption(v != 0)
	case unix.TCP_QUICKACK:
		ops.SetQuickAck(v != 0)
	case unix.TCP_MAXSEG:
		return asError(e.ep.SetSockOptInt(tcpip.MaxSegOption, int(v)))
	case unix.TCP_KEEPIDLE:
		d, err := seconds(32767) // MAX_TCP_KEEPIDLE
		if err != nil {
			return err
		}
		o := tcpip.KeepaliveIdleOption(d)
		return asError(e.ep.SetSockOpt(&o))
	case unix.TCP_KEEPINTVL:
		d, err := seconds(32767) // MAX_TCP_KEEPINTVL
		if err != nil {
			return err
		}
		o := tcpip.KeepaliveIntervalOption(d)
		return asError(e.ep.SetSockOpt(&o))
	case unix.TCP_KEEPCNT:
		if v < 1 || v > 127 { // MAX_TCP_KEEPCNT
			return syscall.EINVAL
		}
		return asError(e.ep.SetSockOptInt(tcpip.KeepaliveCountOption, int(v)))
	case unix.TCP_SYNCNT:
		if v < 1 || v > 127 { // MAX_TCP_SYNCNT
			return syscall.EINVAL
		}
		return asError(e.ep.SetSockOptInt(tcpip.TCPSynCountOption, int(v)))
	case unix.TCP_USER_TIMEOUT:
		if v < 0 {
			return syscall.EINVAL
		}
		o := tcpip.TCPUserTimeoutOption(time.Duration(v) * time.Millisecond)
		return asError(e.ep.SetSockOpt(&o))
	case unix.TCP_LINGER2:
		o := tcpip.TCPLingerTimeoutOption(time.Duration(v) * time.Second)
		return asError(e.ep.SetSockOpt(&o))
	case unix.TCP_DEFER_ACCEPT:
		o := tcpip.TCPDeferAcceptOption(time.Duration(max(v, 0)) * time.Second)
		return asError(e.ep.SetSockOpt(&o))
	case unix.TCP_WINDOW_CLAMP:
		return asError(e.ep.SetSockOptInt(tcpip.TCPWindowClampOption, int(v)))
	default:
		return syscall.ENOPROTOOPT
	}
	return nil
}

// GetSockOpt reads a socket option as getsockopt(2) would, returning the full value
// (TCP_INFO: a Linux struct tcp_info). ENOPROTOOPT: not handled here. SO_ERROR clears the
// pending error.
func (e *TCPEndpoint) GetSockOpt(level, name int) ([]byte, error) {
	if v, ok := e.proxyKeepalive(level, name); ok {
		return intValue(v), nil
	}
	switch level {
	case unix.SOL_SOCKET:
		switch name {
		case unix.SO_TYPE:
			return intValue(unix.SOCK_STREAM), nil
		case unix.SO_PROTOCOL:
			return intValue(unix.IPPROTO_TCP), nil
		case unix.SO_ERROR:
			return intValue(int32(e.SoError())), nil
		case unix.SO_DOMAIN:
			if e.v6 {
				return intValue(unix.AF_INET6), nil
			}
			return intValue(unix.AF_INET), nil
		}
		return getSocketLevel(e.ep, name)
	case unix.IPPROTO_IP, unix.IPPROTO_IPV6:
		return getIPLevel(e.ep, e.v6, level, name)
	case unix.IPPROTO_TCP:
		return e.getTCPLevel(name)
	}
	return nil, syscall.ENOPROTOOPT
}

func (e *TCPEndpoint) getTCPLevel(name int) ([]byte, error) {
	ops := e.ep.SocketOptions()
	getInt := func(o tcpip.SockOptInt) ([]byte, error) {
		v, err := e.ep.GetSockOptInt(o)
		if err != nil {
			return nil, errno(err)
		}
		return intValue(int32(v)), nil
	}
	getDuration := func(o interface {
		tcpip.GettableSocketOption
	}, read func() time.Duration, unit time.Duration) ([]byte, error) {
		if err := e.ep.GetSockOpt(o); err != nil {
			return nil, errno(err)
		}
		return intValue(int32(read() / unit)), nil
	}
	switch name {
	case unix.TCP_NODELAY:
		return boolValue(e.noDelay.Load()), nil
	case unix.TCP_CORK:
		return boolValue(e.cork.Load()), nil
	case unix.TCP_QUICKACK:
		return boolValue(ops.GetQuickAck()), nil
	case unix.TCP_MAXSEG:
		// Linux reports the current MSS of a connection; gVisor only the default.
		if _, mss := e.pathMSS(); mss > 0 {
			return intValue(int32(mss)), nil
		}
		return getInt(tcpip.MaxSegOption)
	case unix.TCP_KEEPCNT:
		return getInt(tcpip.KeepaliveCountOption)
	case unix.TCP_SYNCNT:
		return getInt(tcpip.TCPSynCountOption)
	case unix.TCP_WINDOW_CLAMP:
		return getInt(tcpip.TCPWindowClampOption)
	case unix.TCP_KEEPIDLE:
		var o tcpip.KeepaliveIdleOption
		return getDuration(&o, func() time.Duration { return time.Duration(o) }, time.Second)
	case unix.TCP_KEEPINTVL:
		var o tcpip.KeepaliveIntervalOption
		return getDuration(&o, func() time.Duration { return time.Duration(o) }, time.Second)
	case unix.TCP_USER_TIMEOUT:
		var o tcpip.TCPUserTimeoutOption
		return getDuration(&o, func() time.Duration { return time.Duration(o) }, time.Millisecond)
	case unix.TCP_DEFER_ACCEPT:
		var o tcpip.TCPDeferAcceptOption
		return getDuration(&o, func() time.Duration { return time.Duration(o) }, time.Second)
	case unix.TCP_LINGER2:
		var o tcpip.TCPLingerTimeoutOption
		if err := e.ep.GetSockOpt(&o); err != nil {
			return nil, errno(err)
		}
		if o < 0 {
			return intValue(-1), nil
		}
		return intValue(int32(time.Duration(o) / time.Second)), nil
	case unix.TCP_CONGESTION:
		var o tcpip.CongestionControlOption
		if err := e.ep.GetSockOpt(&o); err != nil {
			return nil, errno(err)
		}
		b := make([]byte, tcpCANameMax)
		copy(b, o)
		return b, nil
	case unix.TCP_INFO:
		return e.tcpInfo()
	}
	return nil, syscall.ENOPROTOOPT
}
