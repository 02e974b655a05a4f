package netstack

import (
	"encoding/binary"
	"slices"
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

// frameBuffers hold the frames of one cut segment (headers repeated per frame) and the views
// of the packet being sent.
var frameBuffers = sync.Pool{New: func() any {
	return &frameBuffer{buf: make([]byte, 0, gsoMaxSize+64*128), frames: make([][]byte, 0, 64), parts: make([][]byte, 0, 64)}
}}

type frameBuffer struct {
	buf    []byte
	frames [][]byte
	parts  [][]byte // the packet's storage, as slices of its views (nothing copied)
	hdr    [maxFrameHeader]byte
}

// maxFrameHeader bounds the headers of a frame the link cuts: Ethernet, IP and TCP with their
// largest options.
const maxFrameHeader = ethHeaderLen + header.IPv4MaximumHeaderSize + header.TCPHeaderMaximumSize

func (fb *frameBuffer) reset() {
	clear(fb.frames)
	clear(fb.parts)
	fb.buf, fb.frames, fb.parts = fb.buf[:0], fb.frames[:0], fb.parts[:0]
}

// packetParts appends the slices of pkt's storage, headers first, to parts: the packet seen
// without the copy PacketBuffer.ToView makes (for a 64 KiB GSO segment a fresh, zeroed heap
// allocation: views above 64 KiB are not pooled).
func packetParts(parts [][]byte, pkt *stack.PacketBuffer) [][]byte {
	views, skip := pkt.AsViewList()
	for v := views.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		parts = append(parts, b[skip:])
		skip = 0
	}
	return parts
}

// gather copies the first len(dst) bytes of parts into dst and returns the parts that remain
// after them; ok is false if parts hold fewer bytes.
func gather(dst []byte, parts [][]byte) (rest [][]byte, ok bool) {
	for len(dst) > 0 {
		if len(parts) == 0 {
			return nil, false
		}
		n := copy(dst, parts[0])
		dst = dst[n:]
		if n == len(parts[0]) {
			parts = parts[1:]
		} else {
			parts[0] = parts[0][n:]
		}
	}
	return parts, true
}

// flatten returns the packet in parts as one slice: the only part itself, or a copy in fb.buf.
func (fb *frameBuffer) flatten(parts [][]byte) []byte {
	if len(parts) == 1 {
		return parts[0]
	}
	for _, p := range parts {
		fb.buf = append(fb.buf, p...)
	}
	return fb.buf
}

// segment cuts a TCP segment with a partial checksum, as gVisor makes them with gso, into
// frames of at most gso.MSS bytes of TCP payload, with complete checksums, appended to fb.
// hdr is the whole Ethernet frame's headers, through TCP's options (pkt.HeaderSize() bytes);
// payload is the segment's data in pieces (consumed). It reports false for frames it cannot
// parse.
func segment(fb *frameBuffer, hdr []byte, payload [][]byte, gso stack.GSO) bool {
	var ipLen int
	var src, dst tcpip.Address
	switch gso.Type {
	case stack.GSOTCPv4:
		if len(hdr) < ethHeaderLen+header.IPv4MinimumSize {
			return false
		}
		ip := header.IPv4(hdr[ethHeaderLen:])
		ipLen = int(ip.HeaderLength())
		if ipLen < header.IPv4MinimumSize || ip.TransportProtocol() != header.TCPProtocolNumber {
			return false
		}
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	case stack.GSOTCPv6:
		if len(hdr) < ethHeaderLen+header.IPv6MinimumSize {
			return false
		}
		ip := header.IPv6(hdr[ethHeaderLen:])
		ipLen = header.IPv6MinimumSize
		if tcpip.TransportProtocolNumber(ip.NextHeader()) != header.TCPProtocolNumber {
			return false // extension headers: gVisor's TCP adds none
		}
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	default:
		return false
	}
	tcpOff := ethHeaderLen + ipLen
	if len(hdr) < tcpOff+header.TCPMinimumSize {
		return false
	}
	tcpLen := int(header.TCP(hdr[tcpOff:]).DataOffset())
	hdrLen := tcpOff + tcpLen
	if tcpLen < header.TCPMinimumSize || len(hdr) != hdrLen {
		return false
	}
	size := 0
	for _, p := range payload {
		size += len(p)
	}
	mss := int(gso.MSS)
	if mss <= 0 || mss > size {
		mss = max(size, 1)
	}
	th := header.TCP(hdr[tcpOff:])
	seq, flags := th.SequenceNumber(), th.Flags()
	var id uint16
	if gso.Type == stack.GSOTCPv4 {
		id = header.IPv4(hdr[ethHeaderLen:]).ID()
	}
	for off, i := 0, 0; off < size || (i == 0 && size == 0); i++ {
		n := min(mss, size-off)
		start := len(fb.buf)
		fb.buf = slices.Grow(fb.buf, hdrLen+n)[:start+hdrLen+n]
		f := fb.buf[start:]
		copy(f, hdr)
		payload, _ = gather(f[hdrLen:], payload)
		last := off+n >= size
		if gso.Type == stack.GSOTCPv4 {
			ip := header.IPv4(f[ethHeaderLen:])
			ip.SetTotalLength(uint16(ipLen + tcpLen + n))
			ip.SetID(id + uint16(i))
			ip.SetChecksum(0)
			ip.SetChecksum(^ip.CalculateChecksum())
		} else {
			header.IPv6(f[ethHeaderLen:]).SetPayloadLength(uint16(tcpLen + n))
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
		xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen+n))
		xsum = checksum.Checksum(f[hdrLen:], xsum)
		t.SetChecksum(^t.CalculateChecksum(xsum))
		fb.frames = append(fb.frames, f)
		off += n
		if size == 0 {
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
		src, dst, transport = ip.SourceAddress(), ip.DestinationAddress(), tcpip.TransportProtocolNumber(ip.NextHeader())
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
