package supervisor

import (
	"bytes"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func sockaddrIn(port uint16, a [4]byte) []byte {
	var sa unix.RawSockaddrInet4
	sa.Family = unix.AF_INET
	sa.Port = port<<8 | port>>8
	sa.Addr = a
	return bytes.Clone((*[sizeofSockaddrIn]byte)(ptrOf(&sa))[:])
}

func sockaddrIn6(port uint16, a [16]byte, scope uint32) []byte {
	var sa unix.RawSockaddrInet6
	sa.Family = unix.AF_INET6
	sa.Port = port<<8 | port>>8
	sa.Addr = a
	sa.Scope_id = scope
	return bytes.Clone((*[sizeofSockaddrIn6]byte)(ptrOf(&sa))[:])
}

func TestDecodeSockaddr(t *testing.T) {
	v6 := netip.MustParseAddr("fd00::1").As16()
	ll := netip.MustParseAddr("fe80::1").As16()
	for _, tc := range []struct {
		name   string
		b      []byte
		v6     bool
		want   string
		unspec bool
		err    error
	}{
		{"in", sockaddrIn(80, [4]byte{10, 9, 0, 1}), false, "10.9.0.1:80", false, nil},
		{"in short", sockaddrIn(80, [4]byte{10, 9, 0, 1})[:15], false, "", false, unix.EINVAL},
		{"in6 on inet", sockaddrIn6(80, v6, 0), false, "", false, unix.EAFNOSUPPORT},
		{"in6", sockaddrIn6(443, v6, 0), true, "[fd00::1]:443", false, nil},
		{"in6 rfc2133", sockaddrIn6(443, v6, 0)[:24], true, "[fd00::1]:443", false, nil},
		{"in6 short", sockaddrIn6(443, v6, 0)[:23], true, "", false, unix.EINVAL},
		{"in6 scope", sockaddrIn6(22, ll, 2), true, "[fe80::1%2]:22", false, nil},
		{"in on inet6", append(sockaddrIn(80, [4]byte{1, 2, 3, 4}), make([]byte, 12)...), true, "", false, unix.EAFNOSUPPORT},
		{"unspec", []byte{0, 0}, false, "", true, nil},
		{"empty", nil, false, "", false, unix.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap, unspec, err := decodeSockaddr(tc.b, tc.v6)
			if err != tc.err || unspec != tc.unspec {
				t.Fatalf("got %v %v %v, want err %v unspec %v", ap, unspec, err, tc.err, tc.unspec)
			}
			if tc.want != "" && ap.String() != tc.want {
				t.Fatalf("got %v, want %s", ap, tc.want)
			}
		})
	}
}

func TestDecodeBindAddr(t *testing.T) {
	ll := netip.MustParseAddr("fe80::1").As16()
	for _, tc := range []struct {
		name string
		b    []byte
		v6   bool
		want string
		err  error
	}{
		{"in", sockaddrIn(80, [4]byte{10, 9, 0, 1}), false, "10.9.0.1:80", nil},
		{"link-local with scope", sockaddrIn6(22, ll, 2), true, "[fe80::1%2]:22", nil},
		// Linux needs an interface for a link-local bind: EINVAL before any address check.
		{"link-local without scope", sockaddrIn6(22, ll, 0), true, "", unix.EINVAL},
		{"link-local multicast without scope", sockaddrIn6(22, netip.MustParseAddr("ff02::1").As16(), 0), true, "", unix.EINVAL},
		{"v4 link-local needs none", sockaddrIn(22, [4]byte{169, 254, 0, 1}), false, "169.254.0.1:22", nil},
		{"v4-mapped link-local needs none", sockaddrIn6(22, netip.MustParseAddr("::ffff:169.254.0.1").As16(), 0), true, "[::ffff:169.254.0.1]:22", nil},
		{"unspec any on inet", append([]byte{0, 0}, make([]byte, 14)...), false, "0.0.0.0:0", nil},
		{"unspec on inet6", append([]byte{0, 0}, make([]byte, 26)...), true, "", unix.EAFNOSUPPORT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap, err := decodeBindAddr(tc.b, tc.v6)
			if err != tc.err || (tc.want != "" && ap.String() != tc.want) {
				t.Fatalf("got %v %v, want %s %v", ap, err, tc.want, tc.err)
			}
		})
	}
}

func TestEncodeSockaddr(t *testing.T) {
	for _, tc := range []struct {
		ap   string
		v6   bool
		want []byte
	}{
		{"10.9.0.1:8080", false, sockaddrIn(8080, [4]byte{10, 9, 0, 1})},
		{"10.9.0.1:8080", true, sockaddrIn6(8080, netip.MustParseAddr("::ffff:10.9.0.1").As16(), 0)},
		{"[fd00::1]:1", true, sockaddrIn6(1, netip.MustParseAddr("fd00::1").As16(), 0)},
		{"[fe80::1%3]:1", true, sockaddrIn6(1, netip.MustParseAddr("fe80::1").As16(), 3)},
	} {
		got := encodeSockaddr(netip.MustParseAddrPort(tc.ap), tc.v6)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s v6=%v: got %x, want %x", tc.ap, tc.v6, got, tc.want)
		}
	}
	// Unbound sockets report the unspecified address and port 0.
	if got := encodeSockaddr(netip.AddrPort{}, false); !bytes.Equal(got, sockaddrIn(0, [4]byte{})) {
		t.Errorf("zero v4: %x", got)
	}
	if got := encodeSockaddr(netip.AddrPort{}, true); !bytes.Equal(got, sockaddrIn6(0, [16]byte{}, 0)) {
		t.Errorf("zero v6: %x", got)
	}
}

// FuzzSockaddr feeds arbitrary program memory to the decoder: it must never panic, and what it
// accepts must survive an encode/decode round trip.
func FuzzSockaddr(f *testing.F) {
	f.Add(sockaddrIn(80, [4]byte{10, 9, 0, 1}), false)
	f.Add(sockaddrIn6(80, netip.MustParseAddr("fe80::1").As16(), 7), true)
	f.Add([]byte{0, 0}, true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		decodeBindAddr(b, v6)
		ap, unspec, err := decodeSockaddr(b, v6)
		if err != nil || unspec {
			return
		}
		back, _, err := decodeSockaddr(encodeSockaddr(ap, v6), v6)
		if err != nil || back != ap {
			t.Fatalf("%v → %v, %v", ap, back, err)
		}
	})
}

func ptrOf[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }
