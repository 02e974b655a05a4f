package wire

import (
	"net/netip"

	"github.com/ztnc/ztnc/zt/internal/bin"
)

// UserMessage is an application message between nodes; type IDs ≤ 65535 are reserved for
// ZeroTier.
type UserMessage struct {
	TypeID uint64
	Data   []byte
}

// Append appends the payload.
func (u *UserMessage) Append(b []byte) []byte { return append(bin.AppendU64(b, u.TypeID), u.Data...) }

// ParseUserMessage decodes a USER_MESSAGE.
func ParseUserMessage(payload []byte) (*UserMessage, error) {
	r := bin.Reader{B: payload}
	u := &UserMessage{TypeID: r.U64()}
	u.Data = r.Copy(r.Len())
	return u, payloadErr(VerbUserMessage, &r)
}

// addrPort builds an endpoint from 4 or 16 IP bytes.
func addrPort(ip []byte, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a, port)
}
