package netstack

import (
	"bytes"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

var (
	src4, dst4 = tcpip.AddrFrom4([4]byte{192, 0, 2, 1}), tcpip.AddrFrom4([4]byte{192, 0, 2, 2})
	src6       = tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	dst6       = tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
)

// ipPacket builds an IPv4 or IPv6 packet around transport (its checksum filled in by fill).
func ipPacket(v6 bool, proto tcpip.TransportProtocolNumber, transport []byte, fill func(src, dst tcpip.Address, t []byte)) []byte {
	if v6 {
		p := make([]byte, header.IPv6MinimumSize+len(transport))
		header.IPv6(p).Encode(&header.IPv6Fields{PayloadLength: uint16(len(transport)), TransportProtocol: proto,
			HopLimit: 64, SrcAddr: src6, DstAddr: dst6})
		copy(p[header.IPv6MinimumSize:], transport)
		fill(src6, dst6, p[header.IPv6MinimumSize:])
		return p
	}
	p := make([]byte, header.IPv4MinimumSize+len(transport))
	ip := header.IPv4(p)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(p)), TTL: 64, Protocol: uint8(proto), SrcAddr: src4, DstAddr: dst4})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(p[header.IPv4MinimumSize:], transport)
	fill(src4, dst4, p[header.IPv4MinimumSize:])
	return p
}

func tcpSegment(v6 bool, payload []byte) []byte {
	t := make([]byte, header.TCPMinimumSize+len(payload))
	header.TCP(t).Encode(&header.TCPFields{SrcPort: 1000, DstPort: 80, SeqNum: 7, AckNum: 9,
		DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck, WindowSize: 1000})
	copy(t[header.TCPMinimumSize:], payload)
	return ipPacket(v6, header.TCPProtocolNumber, t, func(src, dst tcpip.Address, t []byte) {
		xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(t)))
		xsum = checksum.Checksum(t[header.TCPMinimumSize:], xsum)
		header.TCP(t).SetChecksum(^header.TCP(t).CalculateChecksum(xsum))
	})
}

func udpDatagram(v6 bool, payload []byte) []byte {
	t := make([]byte, header.UDPMinimumSize+len(payload))
	header.UDP(t).Encode(&header.UDPFields{SrcPort: 1000, DstPort: 53, Length: uint16(len(t))})
	copy(t[header.UDPMinimumSize:], payload)
	return ipPacket(v6, header.UDPProtocolNumber, t, func(src, dst tcpip.Address, t []byte) {
		xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, src, dst, uint16(len(t)))
		xsum = checksum.Checksum(t[header.UDPMinimumSize:], xsum)
		header.UDP(t).SetChecksum(^header.UDP(t).CalculateChecksum(xsum))
	})
}

func icmpEcho(v6 bool) []byte {
	t := make([]byte, 16)
	if v6 {
		t[0] = byte(header.ICMPv6EchoRequest)
		return ipPacket(true, header.ICMPv6ProtocolNumber, t, func(src, dst tcpip.Address, t []byte) {
			xsum := header.PseudoHeaderChecksum(header.ICMPv6ProtocolNumber, src, dst, uint16(len(t)))
			c := ^checksum.Checksum(t, xsum)
			t[2], t[3] = byte(c>>8), byte(c)
		})
	}
	t[0] = byte(header.ICMPv4Echo)
	return ipPacket(false, header.ICMPv4ProtocolNumber, t, func(_, _ tcpip.Address, t []byte) {
		c := ^checksum.Checksum(t, 0)
		t[2], t[3] = byte(c>>8), byte(c)
	})
}

func TestValidChecksums(t *testing.T) {
	flip := func(p []byte, i int) []byte { q := bytes.Clone(p); q[len(q)-i] ^= 0x40; return q }
	for _, v6 := range []bool{false, true} {
		proto := header.IPv4ProtocolNumber
		if v6 {
			proto = header.IPv6ProtocolNumber
		}
		tcp, udp, icmp := tcpSegment(v6, []byte("hello, world")), udpDatagram(v6, []byte("query")), icmpEcho(v6)
		noSum := bytes.Clone(udp)
		noSum[len(noSum)-len("query")-2], noSum[len(noSum)-len("query")-1] = 0, 0
		for _, tc := range []struct {
			name string
			p    []byte
			want bool
		}{
			{"tcp", tcp, true},
			{"tcp payload corrupted", flip(tcp, 1), false},
			{"tcp truncated", tcp[:len(tcp)-1], false},
			{"udp", udp, true},
			{"udp payload corrupted", flip(udp, 2), false},
			{"udp without checksum", noSum, !v6}, // a zero checksum means none on IPv4 only
			{"icmp", icmp, true},
			{"icmp corrupted", flip(icmp, 3), false},
			{"empty", nil, false},
		} {
			if got := validChecksums(tc.p, proto); got != tc.want {
				t.Errorf("v6=%v %s: %v, want %v", v6, tc.name, got, tc.want)
			}
		}
	}
	bad := tcpSegment(false, []byte("x"))
	bad[10] ^= 1 // IPv4 header checksum
	if validChecksums(bad, header.IPv4ProtocolNumber) {
		t.Errorf("IPv4 header checksum not checked")
	}
	frag := udpDatagram(false, []byte("first fragment"))
	ip := header.IPv4(frag)
	ip.SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	frag[len(frag)-1] ^= 1
	if !validChecksums(frag, header.IPv4ProtocolNumber) {
		t.Errorf("a fragment's transport checksum was checked (it covers the whole datagram)")
	}
	if !validChecksums([]byte{1, 2, 3}, header.ARPProtocolNumber) {
		t.Errorf("ARP refused")
	}
}

// TestSegment cuts a 64 KiB segment (as gVisor hands them over with GSO) and checks every
// frame: sizes, sequence numbers, flags only where they belong, checksums.
func TestSegment(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		payload := make([]byte, 60000)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		p := tcpSegment(v6, payload)
		tcpOff := header.IPv4MinimumSize
		gso := stack.GSO{Type: stack.GSOTCPv4, MSS: 2760, NeedsCsum: true}
		proto := header.IPv4ProtocolNumber
		if v6 {
			tcpOff, gso.Type, gso.MSS, proto = header.IPv6MinimumSize, stack.GSOTCPv6, 2740, header.IPv6ProtocolNumber
		}
		th := header.TCP(p[tcpOff:])
		th.SetFlags(uint8(header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagFin | header.TCPFlagCwr))
		th.SetChecksum(0x1234) // partial, as gVisor leaves it
		frame := append(make([]byte, ethHeaderLen), p...)
		// The payload in pieces of uneven sizes, as a packet's views hold it.
		hdrLen := ethHeaderLen + tcpOff + header.TCPMinimumSize
		var parts [][]byte
		for rest, n := frame[hdrLen:], 1; len(rest) > 0; n = n*3 + 1 {
			k := min(n, len(rest))
			parts, rest = append(parts, rest[:k]), rest[k:]
		}
		var fb frameBuffer
		if !segment(&fb, frame[:hdrLen], parts, gso) {
			t.Fatalf("v6=%v: segment refused", v6)
		}
		want := (len(payload) + int(gso.MSS) - 1) / int(gso.MSS)
		if len(fb.frames) != want {
			t.Fatalf("v6=%v: %d frames, want %d", v6, len(fb.frames), want)
		}
		var got []byte
		for i, f := range fb.frames {
			ip := f[ethHeaderLen:]
			if !validChecksums(ip, proto) {
				t.Errorf("v6=%v frame %d: bad checksum", v6, i)
			}
			seg := header.TCP(ip[tcpOff:])
			data := seg[header.TCPMinimumSize:]
			if i < len(fb.frames)-1 && len(data) != int(gso.MSS) {
				t.Errorf("v6=%v frame %d: %d bytes of payload", v6, i, len(data))
			}
			if seg.SequenceNumber() != 7+uint32(len(got)) {
				t.Errorf("v6=%v frame %d: seq %d", v6, i, seg.SequenceNumber())
			}
			last, first := i == len(fb.frames)-1, i == 0
			fl := seg.Flags()
			if fl&header.TCPFlagAck == 0 || (fl&header.TCPFlagFin != 0) != last || (fl&header.TCPFlagPsh != 0) != last ||
				(fl&header.TCPFlagCwr != 0) != first {
				t.Errorf("v6=%v frame %d: flags %v", v6, i, fl)
			}
			got = append(got, data...)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("v6=%v: payload differs after cutting", v6)
		}
	}
}

// FuzzValidChecksums: any bytes from the network, as IPv4 or IPv6, are judged without a panic.
func FuzzValidChecksums(f *testing.F) {
	for _, v6 := range []bool{false, true} {
		f.Add(tcpSegment(v6, []byte("seed")), v6)
		f.Add(udpDatagram(v6, []byte("seed")), v6)
		f.Add(icmpEcho(v6), v6)
	}
	f.Fuzz(func(t *testing.T, p []byte, v6 bool) {
		proto := header.IPv4ProtocolNumber
		if v6 {
			proto = header.IPv6ProtocolNumber
		}
		validChecksums(p, proto)
	})
}
