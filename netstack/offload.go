package netstack

import (
	"encoding/binary"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Offloads a NIC would do, done by the link.
//
// Transmit: TCP segmentation (gVisor's "host GSO"). The stack hands over TCP
// segments of up to gsoMaxSize bytes, one trip through gVisor's TCP and IP layers for dozens
// of frames, and the link cuts them into MSS-sized segments as a NIC would, then passes the
// frames to the port in one call (BatchPort.WriteFrames). Every segment of a connection that
// uses it arrives with only the pseudo-header summed into its TCP checksum (gVisor's
// CHECKSUM_PARTIAL), short ones included, so the link finishes every checksum.

// Receive: checksum validation (validChecksums). The link claims checksum offload and
// checks in Go, as Tailscale does: gVisor's GRO validates TCP checksums itself with
// PacketData.ChecksumAtOffset, which ignores a consumed link header and so fails every frame
// of an Ethernet link, and the NIC marks packets validated only for links with
// CapabilityRXChecksumOffload; GRO skips its check for packets so marked.

// gsoMaxSize is the largest segment the stack hands over: 64 KiB, as Linux and Tailscale.
const gsoMaxSize = 1 << 16

// frameBuffers hold the frames of one cut segment (headers repeated per frame).
var frameBuffers = sync.Pool{New: func() any {
	return &frameBuffer{buf: make([]byte, 0, gsoMaxSize+64*128), frames: make([][]byte, 0, 64)}
}}

type frameBuffer struct {
	buf    []byte
	frames [][]byte
}

// segment cuts frame (a whole Ethernet frame holding one TCP segment with a partial checksum,
// as gVisor makes them with gso) into frames of at most gso.MSS bytes of TCP payload, with
// complete checksums, appended to fb. It reports false for frames it cannot parse.
func segment(fb *frameBuffer, frame []byte, gso stack.GSO) bool {
	var ipLen int
	var src, dst tcpip.Address
	switch gso.Type {
	case stack.GSOTCPv4:
		if len(frame) < ethHeaderLen+header.IPv4MinimumSize {
			return false
		}
		ip := header.IPv4(frame[ethHeaderLen:])
		ipLen = int(ip.HeaderLength())
		if ipLen < header.IPv4MinimumSize || ip.TransportProtocol() != header.TCPProtocolNumber {
			return false
		}
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	case stack.GSOTCPv6:
		if len(frame) < ethHeaderLen+header.IPv6MinimumSize {
			return false
		}
		ip := header.IPv6(frame[ethHeaderLen:])
		ipLen = header.IPv6MinimumSize
		if ip.TransportProtocol() != header.TCPProtocolNumber {
			return false // extension headers: gVisor's TCP adds none
		}
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	default:
		return false
	}
	tcpOff := ethHeaderLen + ipLen
	if len(frame) < tcpOff+header.TCPMinimumSize {
		return false
	}
	tcpLen := int(header.TCP(frame[tcpOff:]).DataOffset())
	hdrLen := tcpOff + tcpLen
	if tcpLen < header.TCPMinimumSize || len(frame) < hdrLen {
		return false
	}
	payload := frame[hdrLen:]
	mss := int(gso.MSS)
	if mss <= 0 || mss > len(payload) {
		mss = max(len(payload), 1)
	}
	hdr := frame[:hdrLen]
	th := header.TCP(hdr[tcpOff:])
	seq, flags := th.SequenceNumber(), th.Flags()
	var id uint16
	if gso.Type == stack.GSOTCPv4 {
		id = header.IPv4(hdr[ethHeaderLen:]).ID()
	}
	for off, i := 0, 0; off < len(payload) || (i == 0 && len(payload) == 0); i++ {
		chunk := payload[off:min(off+mss, len(payload))]
		start := len(fb.buf)
		fb.buf = append(fb.buf, hdr...)
		fb.buf = append(fb.buf, chunk...)
		f := fb.buf[start:]
		last := off+len(chunk) >= len(payload)
		if gso.Type == stack.GSOTCPv4 {
			ip := header.IPv4(f[ethHeaderLen:])
			ip.SetTotalLength(uint16(ipLen + tcpLen + len(chunk)))
			ip.SetID(id + uint16(i))
			ip.SetChecksum(0)
			ip.SetChecksum(^ip.CalculateChecksum())
		} else {
			header.IPv6(f[ethHeaderLen:]).SetPayloadLength(uint16(tcpLen + len(chunk)))
		}
		t := header.TCP(f[tcpOff:])
		t.SetSequenceNumber(seq + uint32(off))
		fl := flags
		if !last {
			fl &^= header.TCPFlagFin | header.TCPFlagPsh
		}
		if i > 0 {
			fl &^= header.TCPFlagCwr
		}
		t.SetFlags(uint8(fl))
		t.SetChecksum(0)
		xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen+len(chunk)))
		xsum = checksum.Checksum(f[hdrLen:], xsum)
		t.SetChecksum(^t.CalculateChecksum(xsum))
		fb.frames = append(fb.frames, f)
		off += len(chunk)
		if len(payload) == 0 {
			break
		}
	}
	return true
}

// validChecksums reports whether the checksums of IP packet p are right: the IPv4 header's,
// and those of TCP, UDP and ICMP carried directly (no IPv6 extension headers, not an IPv4
// fragment). The link claims receive checksum offload, so gVisor checks none of them itself;
// packets it cannot look into (fragments, extension headers, other protocols) go through
// unchecked at the transport layer, as behind a NIC that offloads checksums (ZeroTier
// authenticates every frame end to end, so only a faulty sender could get one wrong).
func validChecksums(p []byte, proto tcpip.NetworkProtocolNumber) bool {
	var src, dst tcpip.Address
	var transport tcpip.TransportProtocolNumber
	var seg []byte
	switch proto {
	case header.IPv4ProtocolNumber:
		ip := header.IPv4(p)
		if !ip.IsValid(len(p)) || !ip.IsChecksumValid() {
			return false
		}
		if ip.FragmentOffset() != 0 || ip.Flags()&header.IPv4FlagMoreFragments != 0 {
			return true
		}
		src, dst, transport = ip.SourceAddress(), ip.DestinationAddress(), ip.TransportProtocol()
		seg = p[ip.HeaderLength():ip.TotalLength()]
	case header.IPv6ProtocolNumber:
		ip := header.IPv6(p)
		if !ip.IsValid(len(p)) {
			return false
		}
		src, dst, transport = ip.SourceAddress(), ip.DestinationAddress(), ip.TransportProtocol()
		seg = p[header.IPv6MinimumSize : header.IPv6MinimumSize+int(ip.PayloadLength())]
	default:
		return true
	}
	switch transport {
	case header.TCPProtocolNumber:
		if len(seg) < header.TCPMinimumSize {
			return false
		}
		tcp := header.TCP(seg)
		off := int(tcp.DataOffset())
		if off < header.TCPMinimumSize || off > len(seg) {
			return false
		}
		return tcp.IsChecksumValid(src, dst, checksum.Checksum(seg[off:], 0), uint16(len(seg)-off))
	case header.UDPProtocolNumber:
		if len(seg) < header.UDPMinimumSize {
			return false
		}
		udp := header.UDP(seg)
		n := int(udp.Length())
		if n < header.UDPMinimumSize || n > len(seg) {
			return false
		}
		if udp.Checksum() == 0 && proto == header.IPv4ProtocolNumber {
			return true // no checksum (allowed on IPv4 only)
		}
		return udp.IsChecksumValid(src, dst, checksum.Checksum(seg[header.UDPMinimumSize:n], 0))
	case header.ICMPv4ProtocolNumber:
		return proto == header.IPv4ProtocolNumber && checksum.Checksum(seg, 0) == 0xffff
	case header.ICMPv6ProtocolNumber:
		if proto != header.IPv6ProtocolNumber || len(seg) < header.ICMPv6MinimumSize {
			return false
		}
		xsum := header.PseudoHeaderChecksum(header.ICMPv6ProtocolNumber, src, dst, uint16(len(seg)))
		return checksum.Checksum(seg, xsum) == 0xffff
	}
	return true
}

// etherType reads a frame's EtherType.
func etherType(frame []byte) uint16 { return binary.BigEndian.Uint16(frame[12:14]) }
