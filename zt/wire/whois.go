package wire

import (
	"fmt"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Whois asks a root for the identities of addresses.
type Whois struct {
	Addresses []ztaddr.Address
}

// Append appends the payload.
func (w *Whois) Append(b []byte) []byte {
	for _, a := range w.Addresses {
		b = a.Append(b)
	}
	return b
}

// ParseWhois decodes a WHOIS.
func ParseWhois(payload []byte) (*Whois, error) {
	if len(payload) == 0 || len(payload)%ztaddr.AddressLength != 0 {
		return nil, fmt.Errorf("%w: WHOIS of %d bytes", ErrBadPayload, len(payload))
	}
	w := &Whois{}
	for i := 0; i < len(payload); i += ztaddr.AddressLength {
		w.Addresses = append(w.Addresses, ztaddr.AddressFrom(payload[i:]))
	}
	return w, nil
}

// WhoisOK is the body of OK(WHOIS): the public identities found.
type WhoisOK struct {
	Identities []*identity.Identity
}

// Append appends the body.
func (w *WhoisOK) Append(b []byte) []byte {
	for _, id := range w.Identities {
		b = id.AppendBinary(b, false)
	}
	return b
}

// ParseWhoisOK decodes the body of OK(WHOIS).
func ParseWhoisOK(body []byte) (*WhoisOK, error) {
	w := &WhoisOK{}
	for len(body) > 0 {
		id, n, err := identity.Unmarshal(body)
		if err != nil {
			return nil, fmt.Errorf("%w: OK(WHOIS): %v", ErrBadPayload, err)
		}
		w.Identities, body = append(w.Identities, id.Public()), body[n:]
	}
	return w, nil
}

// Rendezvous tells a node where to reach another peer directly (sent by roots).
type Rendezvous struct {
	Flags    uint8
	Peer     ztaddr.Address
	Endpoint ztaddr.InetAddress // IPv4 or IPv6 with port
	Trailing []byte             // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

// Append appends the payload.
func (z *Rendezvous) Append(b []byte) []byte {
	b = z.Peer.Append(append(b, z.Flags))
	b = bin.AppendU16(b, z.Endpoint.AddrPort.Port())
	ip := z.Endpoint.AddrPort.Addr().AsSlice()
	b = append(b, byte(len(ip)))
	return append(append(b, ip...), z.Trailing...)
}

// ParseRendezvous decodes a RENDEZVOUS.
func ParseRendezvous(payload []byte) (*Rendezvous, error) {
	r := bin.Reader{B: payload}
	z := &Rendezvous{Flags: r.U8(), Peer: r.Address()}
	port, n := r.U16(), int(r.U8())
	if r.Err == nil && n != 4 && n != 16 {
		return nil, fmt.Errorf("%w: RENDEZVOUS address length %d", ErrBadPayload, n)
	}
	ip := r.Take(n)
	z.Trailing = trailing(&r)
	if err := payloadErr(VerbRendezvous, &r); err != nil {
		return nil, err
	}
	z.Endpoint = ztaddr.InetAddressOf(addrPort(ip, port))
	return z, nil
}
