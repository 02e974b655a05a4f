package wire

import (
	"fmt"

	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Subscription is one (network, group) a node announces with MULTICAST_LIKE.
type Subscription struct {
	NetworkID ztaddr.NetworkID
	Group     ztaddr.MulticastGroup
}

// MulticastLike announces the groups a node wants frames for.
type MulticastLike struct {
	Subscriptions []Subscription
}

// Append appends the payload.
func (m *MulticastLike) Append(b []byte) []byte {
	for _, s := range m.Subscriptions {
		b = s.Group.Append(bin.AppendU64(b, uint64(s.NetworkID)))
	}
	return b
}

// ParseMulticastLike decodes a MULTICAST_LIKE.
func ParseMulticastLike(payload []byte) (*MulticastLike, error) {
	if len(payload)%18 != 0 {
		return nil, fmt.Errorf("%w: MULTICAST_LIKE of %d bytes", ErrBadPayload, len(payload))
	}
	m := &MulticastLike{}
	r := bin.Reader{B: payload}
	for r.Len() > 0 {
		m.Subscriptions = append(m.Subscriptions, Subscription{ztaddr.NetworkID(r.U64()), r.Group()})
	}
	return m, nil
}

// MULTICAST_GATHER flags.
const GatherFlagCOM = 0x01

// MulticastGather asks for up to Limit members of a group.
type MulticastGather struct {
	NetworkID ztaddr.NetworkID
	Flags     uint8
	Group     ztaddr.MulticastGroup
	Limit     uint32
	COM       *netconf.COM // sent (flag 0x01) so that roots can check membership
	Trailing  []byte       // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

// Append appends the payload.
func (g *MulticastGather) Append(b []byte) []byte {
	b = append(bin.AppendU64(b, uint64(g.NetworkID)), g.Flags)
	b = bin.AppendU32(g.Group.Append(b), g.Limit)
	if g.Flags&GatherFlagCOM != 0 {
		b = g.COM.Append(b)
	}
	return append(b, g.Trailing...)
}

// ParseMulticastGather decodes a MULTICAST_GATHER.
func ParseMulticastGather(payload []byte) (*MulticastGather, error) {
	r := bin.Reader{B: payload}
	g := &MulticastGather{NetworkID: ztaddr.NetworkID(r.U64()), Flags: r.U8()}
	g.Group = r.Group()
	g.Limit = r.U32()
	if r.Err == nil && g.Flags&GatherFlagCOM != 0 {
		com, n, err := netconf.ParseCOM(payload[r.Off:])
		if err != nil {
			return nil, fmt.Errorf("%w: MULTICAST_GATHER: %v", ErrBadPayload, err)
		}
		g.COM, r.Off = com, r.Off+n
	}
	g.Trailing = trailing(&r)
	return g, payloadErr(VerbMulticastGather, &r)
}

// GatherResult is the body of OK(MULTICAST_GATHER): some members of a group.
type GatherResult struct {
	NetworkID  ztaddr.NetworkID
	Group      ztaddr.MulticastGroup
	TotalKnown uint32
	Members    []ztaddr.Address
	Trailing   []byte // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

// Append appends the body.
func (g *GatherResult) Append(b []byte) []byte {
	b = g.Group.Append(bin.AppendU64(b, uint64(g.NetworkID)))
	return append(appendMembers(b, g.TotalKnown, g.Members), g.Trailing...)
}

func appendMembers(b []byte, total uint32, members []ztaddr.Address) []byte {
	b = bin.AppendU16(bin.AppendU32(b, total), uint16(len(members)))
	for _, a := range members {
		b = a.Append(b)
	}
	return b
}

func readMembers(r *bin.Reader) (total uint32, members []ztaddr.Address) {
	total = r.U32()
	n := int(r.U16())
	if n*ztaddr.AddressLength > r.Len() {
		r.Fail(fmt.Errorf("%w: %d members in %d bytes", ErrBadPayload, n, r.Len()))
		return 0, nil
	}
	for range n {
		members = append(members, r.Address())
	}
	return total, members
}

// ParseGatherResult decodes the body of OK(MULTICAST_GATHER).
func ParseGatherResult(body []byte) (*GatherResult, error) {
	r := bin.Reader{B: body}
	g := &GatherResult{NetworkID: ztaddr.NetworkID(r.U64())}
	g.Group = r.Group()
	g.TotalKnown, g.Members = readMembers(&r)
	g.Trailing = trailing(&r)
	return g, payloadErr(VerbOK, &r)
}

// MULTICAST_FRAME flags.
const (
	MulticastFlagCOM         = 0x01 // deprecated
	MulticastFlagGatherLimit = 0x02 // an implicit gather limit is present
	MulticastFlagSourceMAC   = 0x04 // an explicit source MAC is present
	MulticastFlagReplicate   = 0x08 // please replicate (to a multicast replicator)
)

// MulticastFrame carries a multicast Ethernet frame to one recipient.
type MulticastFrame struct {
	NetworkID   ztaddr.NetworkID
	Flags       uint8
	COM         *netconf.COM // flag 0x01
	GatherLimit uint32       // flag 0x02
	Source      ztaddr.MAC   // flag 0x04; otherwise derived from the sender's address
	Group       ztaddr.MulticastGroup
	EtherType   uint16
	Data        []byte // aliases the payload it was parsed from
}

// Append appends the payload.
func (m *MulticastFrame) Append(b []byte) []byte {
	b = append(bin.AppendU64(b, uint64(m.NetworkID)), m.Flags)
	if m.Flags&MulticastFlagCOM != 0 {
		b = m.COM.Append(b)
	}
	if m.Flags&MulticastFlagGatherLimit != 0 {
		b = bin.AppendU32(b, m.GatherLimit)
	}
	if m.Flags&MulticastFlagSourceMAC != 0 {
		b = append(b, m.Source[:]...)
	}
	b = bin.AppendU16(m.Group.Append(b), m.EtherType)
	return append(b, m.Data...)
}

// ParseMulticastFrame decodes a MULTICAST_FRAME; Data aliases payload.
func ParseMulticastFrame(payload []byte) (*MulticastFrame, error) {
	r := bin.Reader{B: payload}
	m := &MulticastFrame{NetworkID: ztaddr.NetworkID(r.U64()), Flags: r.U8()}
	if r.Err == nil && m.Flags&MulticastFlagCOM != 0 {
		com, n, err := netconf.ParseCOM(payload[r.Off:])
		if err != nil {
			return nil, fmt.Errorf("%w: MULTICAST_FRAME: %v", ErrBadPayload, err)
		}
		m.COM, r.Off = com, r.Off+n
	}
	if m.Flags&MulticastFlagGatherLimit != 0 {
		m.GatherLimit = r.U32()
	}
	if m.Flags&MulticastFlagSourceMAC != 0 {
		m.Source = r.MAC()
	}
	m.Group = r.Group()
	m.EtherType = r.U16()
	m.Data = r.Rest()
	return m, payloadErr(VerbMulticastFrame, &r)
}

// MulticastFrameOK is the body of OK(MULTICAST_FRAME), sent when the frame carried a gather
// limit: members of the group the responder knows.
type MulticastFrameOK struct {
	NetworkID  ztaddr.NetworkID
	Group      ztaddr.MulticastGroup
	Flags      uint8        // 0x02: gather results follow; 0x01: a COM precedes them (deprecated)
	COM        *netconf.COM // flag 0x01
	TotalKnown uint32       // flag 0x02
	Members    []ztaddr.Address
	Trailing   []byte // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

// Append appends the body.
func (o *MulticastFrameOK) Append(b []byte) []byte {
	b = append(o.Group.Append(bin.AppendU64(b, uint64(o.NetworkID))), o.Flags)
	if o.Flags&MulticastFlagCOM != 0 {
		b = o.COM.Append(b)
	}
	if o.Flags&MulticastFlagGatherLimit != 0 {
		b = appendMembers(b, o.TotalKnown, o.Members)
	}
	return append(b, o.Trailing...)
}

// ParseMulticastFrameOK decodes the body of OK(MULTICAST_FRAME).
func ParseMulticastFrameOK(body []byte) (*MulticastFrameOK, error) {
	r := bin.Reader{B: body}
	o := &MulticastFrameOK{NetworkID: ztaddr.NetworkID(r.U64())}
	o.Group = r.Group()
	o.Flags = r.U8()
	if r.Err == nil && o.Flags&MulticastFlagCOM != 0 {
		com, n, err := netconf.ParseCOM(body[r.Off:])
		if err != nil {
			return nil, fmt.Errorf("%w: OK(MULTICAST_FRAME): %v", ErrBadPayload, err)
		}
		o.COM, r.Off = com, r.Off+n
	}
	if o.Flags&MulticastFlagGatherLimit != 0 {
		o.TotalKnown, o.Members = readMembers(&r)
	}
	o.Trailing = trailing(&r)
	return o, payloadErr(VerbOK, &r)
}
