package wire

import (
	"net/netip"

	"github.com/ztnc/ztnc/zt/internal/bin"
)

// PUSH_DIRECT_PATHS record flags.
const (
	PathFlagForget          = 0x01
	PathFlagClusterRedirect = 0x02
)

// PathRecord is one candidate physical address in PUSH_DIRECT_PATHS.
type PathRecord struct {
	Flags     uint8
	Extension []byte
	// Endpoint is set for address types 4 and 6.
	Endpoint netip.AddrPort
	// Type and Raw keep records of other address types as they were.
	Type uint8
	Raw  []byte
}

// PushDirectPaths lists addresses at which the sender may be reachable directly.
type PushDirectPaths struct {
	Paths    []PathRecord
	Trailing []byte // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

// NewPathRecord builds a record for an IPv4 or IPv6 endpoint.
func NewPathRecord(ep netip.AddrPort) PathRecord {
	t := uint8(6)
	if ep.Addr().Is4() {
		t = 4
	}
	return PathRecord{Endpoint: ep, Type: t}
}

// Append appends the payload.
func (m *PushDirectPaths) Append(b []byte) []byte {
	b = bin.AppendU16(b, uint16(len(m.Paths)))
	for _, p := range m.Paths {
		b = append(bin.AppendU16(append(b, p.Flags), uint16(len(p.Extension))), p.Extension...)
		raw := p.Raw
		if p.Endpoint.IsValid() {
			raw = bin.AppendU16(p.Endpoint.Addr().AsSlice(), p.Endpoint.Port())
		}
		b = append(append(b, p.Type, byte(len(raw))), raw...)
	}
	return append(b, m.Trailing...)
}

// ParsePushDirectPaths decodes a PUSH_DIRECT_PATHS.
func ParsePushDirectPaths(payload []byte) (*PushDirectPaths, error) {
	r := bin.Reader{B: payload}
	n := int(r.U16())
	m := &PushDirectPaths{}
	for i := 0; i < n && r.Err == nil; i++ {
		p := PathRecord{Flags: r.U8()}
		p.Extension = r.Copy(int(r.U16()))
		p.Type = r.U8()
		raw := r.Copy(int(r.U8()))
		switch {
		case r.Err != nil:
		case p.Type == 4 && len(raw) == 6, p.Type == 6 && len(raw) == 18:
			p.Endpoint = addrPort(raw[:len(raw)-2], uint16(raw[len(raw)-2])<<8|uint16(raw[len(raw)-1]))
		default:
			p.Raw = raw
		}
		m.Paths = append(m.Paths, p)
	}
	m.Trailing = trailing(&r)
	if err := payloadErr(VerbPushDirectPaths, &r); err != nil {
		return nil, err
	}
	return m, nil
}
