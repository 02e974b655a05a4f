package wire

import (
	"fmt"

	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// FrameHeaderSize is the FRAME payload before the Ethernet payload.
const FrameHeaderSize = 10

// Frame carries an Ethernet payload between the two endpoints themselves: source and
// destination MACs are those derived from the sender's and recipient's addresses.
type Frame struct {
	NetworkID ztaddr.NetworkID
	EtherType uint16
	Data      []byte // aliases the payload it was parsed from
}

// Append appends the payload.
func (f Frame) Append(b []byte) []byte {
	return append(AppendFrameHeader(b, f.NetworkID, f.EtherType), f.Data...)
}

// AppendFrameHeader appends the FRAME header; append the Ethernet payload after it.
func AppendFrameHeader(b []byte, nwid ztaddr.NetworkID, etherType uint16) []byte {
	return bin.AppendU16(bin.AppendU64(b, uint64(nwid)), etherType)
}

// ParseFrame decodes a FRAME without copying or allocating (FRAME is the data path): Data
// aliases payload.
func ParseFrame(payload []byte) (Frame, error) {
	if len(payload) < FrameHeaderSize {
		return Frame{}, fmt.Errorf("%w: FRAME of %d bytes", ErrBadPayload, len(payload))
	}
	r := bin.Reader{B: payload}
	return Frame{NetworkID: ztaddr.NetworkID(r.U64()), EtherType: r.U16(), Data: r.Rest()}, nil
}

// EXT_FRAME flags.
const (
	ExtFrameFlagCOM    = 0x01 // a COM precedes the MACs (deprecated)
	ExtFrameFlagPlsAck = 0x10 // the recipient should answer OK(EXT_FRAME)
)

// ExtFrame carries an Ethernet frame with explicit MACs (bridging, TEE/REDIRECT copies).
type ExtFrame struct {
	NetworkID   ztaddr.NetworkID
	Flags       uint8 // ExtFrameFlag*, plus a "subtype" in bits 0x0e that 1.14 never reads
	COM         *netconf.COM
	Destination ztaddr.MAC
	Source      ztaddr.MAC
	EtherType   uint16
	Data        []byte // aliases the payload it was parsed from
}

// Append appends the payload.
func (f *ExtFrame) Append(b []byte) []byte {
	b = append(bin.AppendU64(b, uint64(f.NetworkID)), f.Flags)
	if f.Flags&ExtFrameFlagCOM != 0 {
		b = f.COM.Append(b)
	}
	b = append(append(b, f.Destination[:]...), f.Source[:]...)
	return append(bin.AppendU16(b, f.EtherType), f.Data...)
}

// ParseExtFrame decodes an EXT_FRAME; Data aliases payload.
func ParseExtFrame(payload []byte) (*ExtFrame, error) {
	r := bin.Reader{B: payload}
	f := &ExtFrame{NetworkID: ztaddr.NetworkID(r.U64()), Flags: r.U8()}
	if r.Err == nil && f.Flags&ExtFrameFlagCOM != 0 {
		com, n, err := netconf.ParseCOM(payload[r.Off:])
		if err != nil {
			return nil, fmt.Errorf("%w: EXT_FRAME: %v", ErrBadPayload, err)
		}
		f.COM, r.Off = com, r.Off+n
	}
	f.Destination, f.Source, f.EtherType = r.MAC(), r.MAC(), r.U16()
	f.Data = r.Rest()
	return f, payloadErr(VerbExtFrame, &r)
}

// ExtFrameOK is the body of OK(EXT_FRAME), sent when the frame asked for it.
type ExtFrameOK struct {
	NetworkID ztaddr.NetworkID
	Trailing  []byte // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

// Append appends the body.
func (o *ExtFrameOK) Append(b []byte) []byte {
	return append(bin.AppendU64(b, uint64(o.NetworkID)), o.Trailing...)
}

// ParseExtFrameOK decodes the body of OK(EXT_FRAME).
func ParseExtFrameOK(body []byte) (*ExtFrameOK, error) {
	r := bin.Reader{B: body}
	o := &ExtFrameOK{NetworkID: ztaddr.NetworkID(r.U64())}
	o.Trailing = trailing(&r)
	return o, payloadErr(VerbOK, &r)
}
