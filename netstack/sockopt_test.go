package netstack

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestTCPSockOpt(t *testing.T) {
	n := newNet(t)
	l := listenTCP(t, n.b, ap("[2001:db8::2]:80"))
	conn := dialTCP(t, n.a, true, ap("[2001:db8::2]:80"))
	acceptTCP(t, l)
	fresh := func(v6 bool) *TCPEndpoint {
		e, err := n.a.NewTCP(v6)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		return e
	}
	type opt struct{ level, name int }
	var (
		nodelay   = opt{unix.IPPROTO_TCP, unix.TCP_NODELAY}
		keepalive = opt{unix.SOL_SOCKET, unix.SO_KEEPALIVE}
		keepidle  = opt{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}
		keepintvl = opt{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}
		keepcnt   = opt{unix.IPPROTO_TCP, unix.TCP_KEEPCNT}
		rcvbuf    = opt{unix.SOL_SOCKET, unix.SO_RCVBUF}
		sndbuf    = opt{unix.SOL_SOCKET, unix.SO_SNDBUF}
		reuseaddr = opt{unix.SOL_SOCKET, unix.SO_REUSEADDR}
		reuseport = opt{unix.SOL_SOCKET, unix.SO_REUSEPORT}
		linger    = opt{unix.SOL_SOCKET, unix.SO_LINGER}
		v6only    = opt{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}
		tos       = opt{unix.IPPROTO_IP, unix.IP_TOS}
		ttl       = opt{unix.IPPROTO_IP, unix.IP_TTL}
		hops      = opt{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}
		tclass    = opt{unix.IPPROTO_IPV6, unix.IPV6_TCLASS}
		usertmo   = opt{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT}
		cc        = opt{unix.IPPROTO_TCP, unix.TCP_CONGESTION}
		maxseg    = opt{unix.IPPROTO_TCP, unix.TCP_MAXSEG}
		typ       = opt{unix.SOL_SOCKET, unix.SO_TYPE}
		domain    = opt{unix.SOL_SOCKET, unix.SO_DOMAIN}
		proto     = opt{unix.SOL_SOCKET, unix.SO_PROTOCOL}
		soerror   = opt{unix.SOL_SOCKET, unix.SO_ERROR}
		fastopen  = opt{unix.IPPROTO_TCP, unix.TCP_FASTOPEN}
	)
	i := func(v int32) []byte { return intValue(v) }
	for _, tc := range []struct {
		name    string
		v6      bool
		ep      *TCPEndpoint // nil: a fresh endpoint
		opt     opt
		set     []byte // nil: only get
		setErr  error
		want    []byte // nil: don't check
		wantErr error
	}{
		{name: "nodelay default off as on Linux", opt: nodelay, want: i(0)},
		{name: "nodelay on", opt: nodelay, set: i(1), want: i(1)},
		{name: "nodelay any nonzero", opt: nodelay, set: i(7), want: i(1)},
		{name: "keepalive default off", opt: keepalive, want: i(0)},
		{name: "keepalive on", opt: keepalive, set: i(1), want: i(1)},
		{name: "keepidle", opt: keepidle, set: i(30), want: i(30)},
		{name: "keepidle zero", opt: keepidle, set: i(0), setErr: syscall.EINVAL},
		{name: "keepidle too big", opt: keepidle, set: i(40000), setErr: syscall.EINVAL},
		{name: "keepintvl", opt: keepintvl, set: i(5), want: i(5)},
		{name: "keepcnt", opt: keepcnt, set: i(3), want: i(3)},
		{name: "keepcnt too big", opt: keepcnt, set: i(128), setErr: syscall.EINVAL},
		{name: "rcvbuf doubles", opt: rcvbuf, set: i(65536), want: i(131072)},
		{name: "rcvbuf minimum", opt: rcvbuf, set: i(1), want: i(rcvBufMin)},
		{name: "rcvbuf clamps", opt: rcvbuf, set: i(1 << 30), want: i(2 * rcvBufMax)},
		{name: "sndbuf doubles", opt: sndbuf, set: i(65536), want: i(131072)},
		{name: "sndbuf default", opt: sndbuf, want: i(sndBufDefault)},
		{name: "reuseaddr", opt: reuseaddr, set: i(1), want: i(1)},
		{name: "reuseport", opt: reuseport, set: i(1), want: i(1)},
		{name: "linger", opt: linger, set: append(i(1), i(5)...), want: append(i(1), i(5)...)},
		{name: "linger short", opt: linger, set: i(1), setErr: syscall.EINVAL},
		{name: "short int", opt: nodelay, set: []byte{1, 0}, setErr: syscall.EINVAL},
		{name: "v6only default", v6: true, opt: v6only, want: i(0)},
		{name: "v6only on", v6: true, opt: v6only, set: i(1), want: i(1)},
		{name: "v6only on v4 socket", opt: v6only, set: i(1), setErr: syscall.ENOPROTOOPT, wantErr: syscall.ENOPROTOOPT},
		{name: "v6only after bind", ep: conn, opt: v6only, set: i(1), setErr: syscall.EINVAL},
		{name: "tos", opt: tos, set: i(0x10), want: i(0x10)},
		{name: "tos as char", opt: tos, set: []byte{0x08}, want: i(0x08)},
		{name: "ttl default", opt: ttl, want: i(64)},
		{name: "ttl", opt: ttl, set: i(9), want: i(9)},
		{name: "ttl zero", opt: ttl, set: i(0), setErr: syscall.EINVAL},
		{name: "ttl reset", opt: ttl, set: i(-1), want: i(64)},
		{name: "hops default", v6: true, opt: hops, want: i(64)},
		{name: "hops", v6: true, opt: hops, set: i(3), want: i(3)},
		{name: "tclass", v6: true, opt: tclass, set: i(0x20), want: i(0x20)},
		{name: "user timeout", opt: usertmo, set: i(1500), want: i(1500)},
		{name: "user timeout negative", opt: usertmo, set: i(-1), setErr: syscall.EINVAL},
		{name: "congestion default", opt: cc, want: append([]byte(defaultCongestionControl), make([]byte, tcpCANameMax-len(defaultCongestionControl))...)},
		{name: "congestion cubic", opt: cc, set: []byte("cubic\x00"), want: append([]byte("cubic"), make([]byte, tcpCANameMax-5)...)},
		{name: "congestion unknown", opt: cc, set: []byte("bbr"), setErr: syscall.ENOENT},
		{name: "maxseg established", ep: conn, opt: maxseg, want: i(testMTU - 40 - 20 - 12)},
		{name: "maxseg unconnected", opt: maxseg, want: i(536)},
		{name: "type", opt: typ, want: i(unix.SOCK_STREAM)},
		{name: "domain v6", v6: true, opt: domain, want: i(unix.AF_INET6)},
		{name: "protocol", opt: proto, want: i(unix.IPPROTO_TCP)},
		{name: "so_error none", opt: soerror, want: i(0)},
		{name: "unmapped", opt: fastopen, set: i(5), setErr: syscall.ENOPROTOOPT, wantErr: syscall.ENOPROTOOPT},
		{name: "unknown level", opt: opt{unix.SOL_UDP, 1}, set: i(1), setErr: syscall.ENOPROTOOPT, wantErr: syscall.ENOPROTOOPT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.ep
			if e == nil {
				e = fresh(tc.v6)
			}
			if tc.set != nil {
				if err := e.SetSockOpt(tc.opt.level, tc.opt.name, tc.set); !errors.Is(err, tc.setErr) || (tc.setErr == nil && err != nil) {
					t.Fatalf("set: %v, want %v", err, tc.setErr)
				}
			}
			got, err := e.GetSockOpt(tc.opt.level, tc.opt.name)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("get: %v, want %v", err, tc.wantErr)
			}
			if tc.want != nil && !bytes.Equal(got, tc.want) {
				t.Fatalf("get = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTCPInfo(t *testing.T) {
	n := newNet(t)
	l := listenTCP(t, n.b, ap("192.0.2.2:80"))
	c := dialTCP(t, n.a, false, ap("192.0.2.2:80"))
	acceptTCP(t, l)
	b, err := c.GetSockOpt(unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != tcpInfoSize {
		t.Fatalf("TCP_INFO is %d bytes, want %d", len(b), tcpInfoSize)
	}
	// Decode as the C struct (x/sys/unix's TCPInfo in memory) to check the layout.
	var info unix.TCPInfo
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&info)), unsafe.Sizeof(info)), b)
	if info.State != 1 || info.Ca_state != tcpCAOpen {
		t.Errorf("state %d ca_state %d, want ESTABLISHED, Open", info.State, info.Ca_state)
	}
	if info.Snd_mss == 0 || info.Snd_mss != info.Advmss || info.Pmtu != testMTU {
		t.Errorf("mss %d advmss %d pmtu %d", info.Snd_mss, info.Advmss, info.Pmtu)
	}
	if info.Rto == 0 || info.Snd_cwnd == 0 || info.Snd_ssthresh != tcpInfiniteSsthresh {
		t.Errorf("rto %d cwnd %d ssthresh %#x", info.Rto, info.Snd_cwnd, info.Snd_ssthresh)
	}
	if info.Segs_out == 0 || info.Segs_in == 0 {
		t.Errorf("segs out %d in %d", info.Segs_out, info.Segs_in)
	}
	fresh, _ := n.a.NewTCP(false)
	defer fresh.Close()
	b, err = fresh.GetSockOpt(unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil || b[0] != 7 {
		t.Fatalf("fresh socket TCP_INFO state %v, %v; want TCP_CLOSE", b[:1], err)
	}
}

func TestTCPSoErrorConnect(t *testing.T) {
	n := newNet(t)
	c, e := connectTCP(t, n.a, false, ap("192.0.2.2:9"))
	if e != syscall.ECONNREFUSED {
		t.Fatalf("connect: %v", e)
	}
	// SO_ERROR was read (and cleared) by connectTCP.
	if b, err := c.GetSockOpt(unix.SOL_SOCKET, unix.SO_ERROR); err != nil || !bytes.Equal(b, intValue(0)) {
		t.Fatalf("SO_ERROR after read: %v, %v", b, err)
	}
}

// TestSpliceKeepaliveInvisible: Splice turns keepalive on for the proxy, but the program
// still reads its own settings (or Linux's defaults).
func TestSpliceKeepaliveInvisible(t *testing.T) {
	n := newNet(t)
	l := listenTCP(t, n.b, ap("192.0.2.2:80"))
	c := dialTCP(t, n.a, false, ap("192.0.2.2:80"))
	s := acceptTCP(t, l)
	if err := s.SetSockOpt(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, intValue(60)); err != nil {
		t.Fatal(err)
	}
	spliceConn(t, c)
	spliceConn(t, s)
	for _, tc := range []struct {
		e           *TCPEndpoint
		level, name int
		want        int32
	}{
		{c, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0},
		{c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 7200},
		{c, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 75},
		{c, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9},
		{s, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 60},
	} {
		if got, err := tc.e.GetSockOpt(tc.level, tc.name); err != nil || !bytes.Equal(got, intValue(tc.want)) {
			t.Errorf("opt %d/%d = %v, %v; want %d", tc.level, tc.name, got, err, tc.want)
		}
	}
	if !c.ep.SocketOptions().GetKeepAlive() {
		t.Error("proxy did not turn keepalive on")
	}
	if c.SetSockOpt(unix.SOL_SOCKET, unix.SO_KEEPALIVE, intValue(1)) != nil {
		t.Fatal("set SO_KEEPALIVE")
	}
	// Now the program runs keepalive, with Linux's timers.
	if got, _ := c.GetSockOpt(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); !bytes.Equal(got, intValue(linuxKeepaliveIdle)) {
		t.Errorf("after the program enabled keepalive, TCP_KEEPIDLE = %v", got)
	}
}

// FuzzSockOpt: option values come from programs; no value may panic an endpoint of any kind,
// and every error is an errno.
func FuzzSockOpt(f *testing.F) {
	n := newNet(f)
	l := listenTCP(f, n.b, ap("[::]:80"))
	conn := dialTCP(f, n.a, true, ap("[2001:db8::2]:80"))
	acceptTCP(f, l)
	tcp4, _ := n.a.NewTCP(false)
	udp6, _ := n.a.NewUDP(true)
	ping4, _ := n.a.NewPing(false)
	f.Cleanup(func() { tcp4.Close(); udp6.Close(); ping4.Close() })
	type opter interface {
		SetSockOpt(level, name int, val []byte) error
		GetSockOpt(level, name int) ([]byte, error)
	}
	eps := []opter{conn, tcp4, udp6, ping4}
	for _, o := range [][2]int{
		{unix.SOL_SOCKET, unix.SO_LINGER}, {unix.SOL_SOCKET, unix.SO_RCVBUF},
		{unix.IPPROTO_TCP, unix.TCP_CONGESTION}, {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
		{unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP}, {unix.IPPROTO_IP, unix.IP_MULTICAST_IF},
		{unix.IPPROTO_IPV6, unix.IPV6_ADD_MEMBERSHIP}, {unix.IPPROTO_IP, unix.IP_TTL},
	} {
		f.Add(uint8(0), o[0], o[1], []byte{0xe0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0})
	}
	// group_req (MCAST_JOIN_GROUP): interface 1, an AF_INET group 239.0.0.1 / AF_INET6 ff02::1.
	req4 := make([]byte, 136)
	req4[0], req4[8], req4[12], req4[15] = 1, unix.AF_INET, 239, 1
	req6 := make([]byte, 136)
	req6[0], req6[8], req6[16], req6[17], req6[31] = 1, unix.AF_INET6, 0xff, 2, 1
	f.Add(uint8(2), unix.IPPROTO_IP, unix.MCAST_JOIN_GROUP, req4)
	f.Add(uint8(2), unix.IPPROTO_IPV6, unix.MCAST_JOIN_GROUP, req6)
	f.Add(uint8(2), unix.IPPROTO_IPV6, unix.MCAST_LEAVE_GROUP, req6)
	f.Fuzz(func(t *testing.T, which uint8, level, name int, val []byte) {
		e := eps[int(which)%len(eps)]
		if err := e.SetSockOpt(level, name, val); err != nil {
			if _, ok := err.(syscall.Errno); !ok {
				t.Fatalf("set %d/%d: %T %v", level, name, err, err)
			}
		}
		if _, err := e.GetSockOpt(level, name); err != nil {
			if _, ok := err.(syscall.Errno); !ok {
				t.Fatalf("get %d/%d: %T %v", level, name, err, err)
			}
		}
	})
}
