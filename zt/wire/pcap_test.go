package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
)

// datagram is one UDP payload from a capture.
type datagram struct {
	index    int // 1-based frame number
	src, dst netip.AddrPort
	payload  []byte
}

// readPcap reads every UDP/IPv4 datagram of a classic little-endian pcap file with Linux
// "cooked" v2 (SLL2) link headers, failing on anything else so nothing goes unexamined.
func readPcap(path string) ([]datagram, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		return nil, fmt.Errorf("not a little-endian microsecond pcap")
	}
	if lt := binary.LittleEndian.Uint32(b[20:]); lt != 276 {
		return nil, fmt.Errorf("link type %d, want 276 (SLL2)", lt)
	}
	var out []datagram
	for off, n := 24, 1; off < len(b); n++ {
		if len(b)-off < 16 {
			return nil, fmt.Errorf("frame %d: truncated record header", n)
		}
		caplen := int(binary.LittleEndian.Uint32(b[off+8:]))
		origlen := int(binary.LittleEndian.Uint32(b[off+12:]))
		off += 16
		if caplen != origlen || len(b)-off < caplen {
			return nil, fmt.Errorf("frame %d: truncated capture (%d of %d bytes)", n, caplen, origlen)
		}
		frame := b[off : off+caplen]
		off += caplen
		if len(frame) < 20 || binary.BigEndian.Uint16(frame) != 0x0800 {
			return nil, fmt.Errorf("frame %d: not IPv4", n)
		}
		ip := frame[20:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl+8 || ip[9] != 17 {
			return nil, fmt.Errorf("frame %d: not UDP over IPv4", n)
		}
		if total := int(binary.BigEndian.Uint16(ip[2:])); total != len(ip) || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return nil, fmt.Errorf("frame %d: IP length %d of %d, or IP fragment", n, total, len(ip))
		}
		udp := ip[ihl:]
		if int(binary.BigEndian.Uint16(udp[4:])) != len(udp) {
			return nil, fmt.Errorf("frame %d: UDP length mismatch", n)
		}
		out = append(out, datagram{
			index:   n,
			src:     netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(udp)),
			dst:     netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(udp[2:])),
			payload: udp[8:],
		})
	}
	return out, nil
}
