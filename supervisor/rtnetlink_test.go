package supervisor

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

var testIfaces = []Interface{
	{Index: 1, Name: "lo", MTU: 65536, Loopback: true, Addrs: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}},
	{Index: 2, Name: "ztabcdefgh", MAC: [6]byte{2, 1, 2, 3, 4, 5}, MTU: 2800, Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.9.0.1/24"), netip.MustParsePrefix("fd00::1/64"), netip.MustParsePrefix("fe80::1/64")}},
}

// request builds a netlink request as programs send it: header, fixed part, padding.
func request(typ, flags uint16, seq uint32, fixed []byte, trailing int) []byte {
	b := make([]byte, sizeofNlmsghdr, sizeofNlmsghdr+len(fixed)+trailing)
	binary.NativeEndian.PutUint32(b[0:], uint32(sizeofNlmsghdr+len(fixed)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	b = append(b, fixed...)
	return append(b, make([]byte, trailing)...)
}

// answers parses what answerRoute sent with the standard library's netlink parsers.
func answers(t testing.TB, req []byte) []syscall.NetlinkMessage {
	t.Helper()
	msgs := parseNetlink(req)
	if len(msgs) != 1 {
		t.Fatalf("request parsed as %d messages", len(msgs))
	}
	out, ok := answerRoute(msgs[0], 4242, testIfaces)
	if !ok {
		t.Fatal("not answered")
	}
	var all []syscall.NetlinkMessage
	for _, d := range out {
		if len(d) > nlDatagram {
			t.Fatalf("datagram of %d bytes", len(d))
		}
		m, err := syscall.ParseNetlinkMessage(d)
		if err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		all = append(all, m...)
	}
	for _, m := range all {
		if m.Header.Seq != 7 || m.Header.Pid != 4242 {
			t.Fatalf("header %+v", m.Header)
		}
	}
	return all
}

func TestAnswerGetAddrDump(t *testing.T) {
	for _, tc := range []struct {
		family byte
		want   []string
	}{
		{unix.AF_UNSPEC, []string{"127.0.0.1/8", "::1/128", "10.9.0.1/24", "fd00::1/64", "fe80::1/64"}},
		{unix.AF_INET, []string{"127.0.0.1/8", "10.9.0.1/24"}},
		{unix.AF_INET6, []string{"::1/128", "fd00::1/64", "fe80::1/64"}},
	} {
		// glibc sends a struct rtgenmsg (one byte, padded), iproute2 a struct ifaddrmsg and
		// zeroes after it.
		for _, fixed := range [][]byte{{tc.family, 0, 0, 0}, {tc.family, 0, 0, 0, 0, 0, 0, 0}} {
			msgs := answers(t, request(unix.RTM_GETADDR, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 7, fixed, 128))
			var got []string
			for _, m := range msgs[:len(msgs)-1] {
				if m.Header.Type != unix.RTM_NEWADDR {
					t.Fatalf("type %d", m.Header.Type)
				}
				ifa := m.Data[:sizeofIfaddrmsg]
				attrs, err := syscall.ParseNetlinkRouteAttr(&m)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range attrs {
					if a.Attr.Type == unix.IFA_ADDRESS {
						ip, _ := netip.AddrFromSlice(a.Value)
						got = append(got, netip.PrefixFrom(ip, int(ifa[1])).String())
					}
				}
			}
			if last := msgs[len(msgs)-1]; last.Header.Type != unix.NLMSG_DONE {
				t.Fatalf("dump ends with type %d", last.Header.Type)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("family %d: %v, want %v", tc.family, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("family %d: %v, want %v", tc.family, got, tc.want)
				}
			}
		}
	}
}

func TestAnswerGetLink(t *testing.T) {
	msgs := answers(t, request(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 7, make([]byte, sizeofIfinfomsg), 0))
	var names []string
	for _, m := range msgs[:len(msgs)-1] {
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range attrs {
			if a.Attr.Type == unix.IFLA_IFNAME {
				names = append(names, cString(a.Value))
			}
		}
	}
	if len(names) != 2 || names[0] != "lo" || names[1] != "ztabcdefgh" {
		t.Fatalf("links %v", names)
	}
	// One link by index, with an acknowledgement; an unknown one is ENODEV.
	fixed := make([]byte, sizeofIfinfomsg)
	binary.NativeEndian.PutUint32(fixed[4:], 2)
	msgs = answers(t, request(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 7, fixed, 0))
	if len(msgs) != 2 || msgs[0].Header.Type != unix.RTM_NEWLINK || msgs[1].Header.Type != unix.NLMSG_ERROR {
		t.Fatalf("by index: %+v", msgs)
	}
	binary.NativeEndian.PutUint32(fixed[4:], 9)
	msgs = answers(t, request(unix.RTM_GETLINK, unix.NLM_F_REQUEST, 7, fixed, 0))
	if len(msgs) != 1 || msgs[0].Header.Type != unix.NLMSG_ERROR || int32(binary.NativeEndian.Uint32(msgs[0].Data)) != -int32(unix.ENODEV) {
		t.Fatalf("unknown index: %+v", msgs)
	}
}

func TestParseNetlinkStopsAtMalformed(t *testing.T) {
	a := request(unix.RTM_GETLINK, unix.NLM_F_REQUEST, 1, make([]byte, sizeofIfinfomsg), 0)
	b := request(unix.RTM_GETADDR, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 2, make([]byte, sizeofIfaddrmsg), 0)
	bad := []byte{0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	msgs := parseNetlink(append(append(append([]byte{}, a...), b...), bad...))
	if len(msgs) != 2 || msgs[0].typ != unix.RTM_GETLINK || msgs[1].seq != 2 {
		t.Fatalf("%+v", msgs)
	}
}

// FuzzNetlinkRequest: whatever a program sends, parsing and answering never panic, and the
// answers are well-formed netlink messages within the datagram bound.
func FuzzNetlinkRequest(f *testing.F) {
	f.Add(request(unix.RTM_GETADDR, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 7, []byte{0, 0, 0, 0}, 0))
	f.Add(request(unix.RTM_GETLINK, unix.NLM_F_REQUEST, 7, make([]byte, sizeofIfinfomsg), 128))
	named := append(make([]byte, sizeofIfinfomsg), 8, 0, unix.IFLA_IFNAME, 0, 'l', 'o', 0, 0)
	f.Add(request(unix.RTM_GETLINK, unix.NLM_F_REQUEST, 7, named, 0))
	f.Add([]byte{20, 0, 0, 0, 18, 0, 1, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range parseNetlink(b) {
			out, _ := answerRoute(m, 1, testIfaces)
			for _, d := range out {
				if len(d) > nlDatagram {
					t.Fatalf("datagram of %d bytes", len(d))
				}
				if _, err := syscall.ParseNetlinkMessage(d); err != nil {
					t.Fatalf("malformed answer: %v", err)
				}
			}
		}
	})
}

func FuzzParseEpollInfo(f *testing.F) {
	f.Add([]byte("tfd:        5 events:       19 data:             5eed  pos:0 ino:1d3e sdev:8\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, w := range parseEpollInfo(b, 3, 5, 0x1d3e) {
			if w.epfd != 3 {
				t.Fatal(w)
			}
		}
	})
}
