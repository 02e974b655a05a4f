package supervisor

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

func cmsgBytes(level, typ int32, data []byte) []byte {
	b := make([]byte, cmsgAlign(sizeofCmsghdr+len(data)))
	binary.NativeEndian.PutUint64(b, uint64(sizeofCmsghdr+len(data)))
	binary.NativeEndian.PutUint32(b[8:], uint32(level))
	binary.NativeEndian.PutUint32(b[12:], uint32(typ))
	copy(b[sizeofCmsghdr:], data)
	return b
}

func TestParseCmsgs(t *testing.T) {
	two := append(cmsgBytes(unix.IPPROTO_IP, unix.IP_PKTINFO, make([]byte, 12)), cmsgBytes(unix.SOL_UDP, udpSegment, []byte{0xdc, 5})...)
	short := cmsgBytes(1, 2, []byte{1, 2, 3})
	binary.NativeEndian.PutUint64(short, 8) // shorter than its header
	long := cmsgBytes(1, 2, []byte{1, 2, 3})
	binary.NativeEndian.PutUint64(long, 100) // past the end
	for _, tc := range []struct {
		name string
		b    []byte
		n    int
		err  error
	}{
		{"empty", nil, 0, nil},
		{"two", two, 2, nil},
		{"unaligned tail ignored", append(cmsgBytes(1, 2, nil), 1, 2, 3), 1, nil},
		{"length below header", short, 0, unix.EINVAL},
		{"length past the end", long, 0, unix.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCmsgs(tc.b)
			if err != tc.err || len(got) != tc.n {
				t.Fatalf("got %d messages, %v; want %d, %v", len(got), err, tc.n, tc.err)
			}
		})
	}
}

// TestCmsgWriter: messages are laid out as the kernel does, and cut (MSG_CTRUNC) when the
// program's buffer is short.
func TestCmsgWriter(t *testing.T) {
	w := cmsgWriter{limit: 64}
	w.add(unix.IPPROTO_IP, unix.IP_TTL, intOpt(64))
	w.add(unix.IPPROTO_IP, unix.IP_TOS, []byte{0x10})
	if w.trunc || len(w.buf) != 48 {
		t.Fatalf("len %d trunc %v", len(w.buf), w.trunc)
	}
	ms, err := unix.ParseSocketControlMessage(w.buf)
	if err != nil || len(ms) != 2 || ms[0].Header.Type != unix.IP_TTL || ms[1].Data[0] != 0x10 {
		t.Fatalf("%+v %v", ms, err)
	}
	w = cmsgWriter{limit: 20}
	w.add(unix.IPPROTO_IP, unix.IP_PKTINFO, make([]byte, 12))
	if !w.trunc || len(w.buf) != 20 {
		t.Fatalf("short buffer: len %d trunc %v", len(w.buf), w.trunc)
	}
	w = cmsgWriter{limit: 8}
	w.add(unix.IPPROTO_IP, unix.IP_TTL, intOpt(1))
	if !w.trunc || len(w.buf) != 0 {
		t.Fatalf("no room for a header: len %d trunc %v", len(w.buf), w.trunc)
	}
}

func TestDecodeIovecs(t *testing.T) {
	iov := func(pairs ...uint64) []byte {
		var b []byte
		for _, v := range pairs {
			b = binary.NativeEndian.AppendUint64(b, v)
		}
		return b
	}
	segs, total, err := decodeIovecs(iov(0x1000, 10, 0x2000, 0, 0x3000, 5))
	if err != nil || total != 15 || len(segs) != 3 || segs[2].Addr != 0x3000 {
		t.Fatalf("%v %d %v", segs, total, err)
	}
	if _, _, err := decodeIovecs(iov(0x1000, 1<<63)); err != unix.EINVAL {
		t.Fatalf("huge length: %v", err)
	}
	if _, _, err := decodeIovecs(iov(0x1000, maxRW, 0x2000, maxRW)); err != unix.EINVAL {
		t.Fatalf("overflowing sum: %v", err)
	}
}

// FuzzControl feeds arbitrary program memory to the decoders of sendmsg/recvmsg arguments:
// msghdr, iovec arrays and control messages. None may panic; what parses must be within the
// buffer it came from.
func FuzzControl(f *testing.F) {
	f.Add(append(cmsgBytes(unix.IPPROTO_IP, unix.IP_PKTINFO, make([]byte, 12)), cmsgBytes(1, 2, []byte{3})...))
	f.Add(make([]byte, sizeofMsghdr))
	f.Add(bytes.Repeat([]byte{0xff}, 80))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := parseCmsgs(b)
		if err == nil {
			n := 0
			for _, m := range ms {
				n += sizeofCmsghdr + len(m.data)
			}
			if n > len(b) {
				t.Fatalf("messages cover %d bytes of %d", n, len(b))
			}
		}
		if len(b) >= sizeofMsghdr {
			decodeMsghdr(b)
		}
		decodeIovecs(b[:len(b)/sizeofIovec*sizeofIovec])
		w := cmsgWriter{limit: len(b)}
		for _, m := range ms {
			w.add(m.level, m.typ, m.data)
		}
		sendOptions(ms)
		if len(w.buf) > w.limit {
			t.Fatalf("wrote %d bytes into %d", len(w.buf), w.limit)
		}
	})
}

func TestSendOptions(t *testing.T) {
	pktinfo6 := make([]byte, 20)
	copy(pktinfo6, []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	cms, err := parseCmsgs(append(cmsgBytes(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pktinfo6), cmsgBytes(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, intOpt(7))...))
	if err != nil {
		t.Fatal(err)
	}
	o, gso, err := sendOptions(cms)
	if err != nil || o.From.String() != "fd00::1" || o.TTL != 7 || gso != 0 {
		t.Fatalf("%+v %d %v", o, gso, err)
	}
	cms, _ = parseCmsgs(cmsgBytes(unix.SOL_UDP, udpSegment, binary.NativeEndian.AppendUint16(nil, 1200)))
	if _, gso, err := sendOptions(cms); err != nil || gso != 1200 {
		t.Fatalf("UDP_SEGMENT 1200: %d %v", gso, err)
	}
	for _, bad := range [][]byte{
		cmsgBytes(unix.SOL_UDP, udpSegment, []byte{0xdc}),
		cmsgBytes(unix.IPPROTO_IP, unix.IP_TTL, intOpt(300)),
		cmsgBytes(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, make([]byte, 8)),
	} {
		cms, _ := parseCmsgs(bad)
		if _, _, err := sendOptions(cms); err != unix.EINVAL {
			t.Errorf("%x: %v, want EINVAL", bad, err)
		}
	}
}
