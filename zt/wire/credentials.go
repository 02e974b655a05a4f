package wire

import (
	"fmt"

	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/netconf"
)

// NetworkCredentials pushes credentials to a peer (or, from a controller, revocations).
type NetworkCredentials struct {
	COMs         []*netconf.COM
	Capabilities []*netconf.Capability
	Tags         []*netconf.Tag
	Revocations  []*netconf.Revocation
	COOs         []*netconf.COO
	Trailing     []byte // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

// Append appends the payload in 1.14's form (every section present).
func (c *NetworkCredentials) Append(b []byte) []byte {
	for _, com := range c.COMs {
		b = com.Append(b)
	}
	b = append(b, 0)
	b = bin.AppendU16(b, uint16(len(c.Capabilities)))
	for _, x := range c.Capabilities {
		b = x.Append(b)
	}
	b = bin.AppendU16(b, uint16(len(c.Tags)))
	for _, x := range c.Tags {
		b = x.Append(b)
	}
	b = bin.AppendU16(b, uint16(len(c.Revocations)))
	for _, x := range c.Revocations {
		b = x.Append(b)
	}
	b = bin.AppendU16(b, uint16(len(c.COOs)))
	for _, x := range c.COOs {
		b = x.Append(b)
	}
	return append(b, c.Trailing...)
}

// parseList reads a [2] count and that many credentials.
func parseList[T any](r *bin.Reader, parse func([]byte) (T, int, error)) []T {
	n := int(r.U16())
	var out []T
	for i := 0; i < n && r.Err == nil; i++ {
		x, k, err := parse(r.B[r.Off:])
		if err != nil {
			r.Fail(err)
			break
		}
		out, r.Off = append(out, x), r.Off+k
	}
	return out
}

// ParseNetworkCredentials decodes a NETWORK_CREDENTIALS. As in zerotier-one, the sections after
// the COMs may be missing (older senders).
func ParseNetworkCredentials(payload []byte) (*NetworkCredentials, error) {
	r := bin.Reader{B: payload}
	c := &NetworkCredentials{}
	for r.Len() > 0 && payload[r.Off] != 0 {
		com, n, err := netconf.ParseCOM(payload[r.Off:])
		if err != nil {
			return nil, fmt.Errorf("%w: NETWORK_CREDENTIALS: %v", ErrBadPayload, err)
		}
		c.COMs, r.Off = append(c.COMs, com), r.Off+n
	}
	r.Off = min(r.Off+1, len(payload)) // the 0 after the COMs, if present
	if r.Len() > 0 {
		c.Capabilities = parseList(&r, netconf.ParseCapability)
	}
	if r.Len() > 0 {
		c.Tags = parseList(&r, netconf.ParseTag)
	}
	if r.Len() > 0 {
		c.Revocations = parseList(&r, netconf.ParseRevocation)
	}
	if r.Len() > 0 {
		c.COOs = parseList(&r, netconf.ParseCOO)
	}
	c.Trailing = trailing(&r)
	if err := payloadErr(VerbNetworkCredentials, &r); err != nil {
		return nil, err
	}
	return c, nil
}
