package netstack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Hub is an in-process Ethernet switch: the virtual network of `ztnc-run --local` and of
// tests. It learns where unicast MACs are from the source of the frames its ports send and
// floods unicast frames to unknown MACs. Multicast follows ZeroTier's rules, so that a stack
// that works on a Hub works on a ZeroTier network: a multicast frame reaches only the ports
// subscribed to its group, an ARP request for an IPv4 address reaches the ports subscribed
// to the broadcast MAC with that address as ADI, and other broadcasts reach every port.
//
// A Hub delivers a frame by calling the receivers of the destination ports synchronously,
// from the goroutine that called WriteFrame, one call at a time per port; receivers must be
// quick and must not write to the Hub themselves (a Stack's receiver only queues the frame).
type Hub struct {
	mu    sync.RWMutex
	ports map[*HubPort]struct{}
	fdb   map[[6]byte]*HubPort // learned unicast MACs
}

// NewHub returns a Hub without ports.
func NewHub() *Hub {
	return &Hub{ports: map[*HubPort]struct{}{}, fdb: map[[6]byte]*HubPort{}}
}

// HubPort is one port of a Hub; it implements Port.
type HubPort struct {
	hub *Hub
	mac [6]byte
	mtu int

	// mu serialises calls of the receiver (Port contract: one call at a time) and lets
	// SetReceiver(nil) return only once no call is running.
	mu   sync.Mutex
	recv func(dst, src [6]byte, etherType uint16, payload []byte)

	// groups is guarded by hub.mu.
	groups map[multicastGroup]struct{}
}

type multicastGroup struct {
	mac [6]byte
	adi uint32
}

// ErrPortClosed is returned by WriteFrame on a HubPort that was closed.
var ErrPortClosed = errors.New("hub port closed")

// NewPort attaches a new port with the given MAC and MTU (the largest Ethernet payload).
func (h *Hub) NewPort(mac [6]byte, mtu int) *HubPort {
	p := &HubPort{hub: h, mac: mac, mtu: mtu, groups: map[multicastGroup]struct{}{}}
	h.mu.Lock()
	h.ports[p] = struct{}{}
	h.mu.Unlock()
	return p
}

// MAC implements Port.
func (p *HubPort) MAC() [6]byte { return p.mac }

// MTU implements Port.
func (p *HubPort) MTU() int { return p.mtu }

// SetReceiver implements Port. After SetReceiver(nil) returns, the old receiver is not
// running and will not be called again.
func (p *HubPort) SetReceiver(fn func(dst, src [6]byte, etherType uint16, payload []byte)) {
	p.mu.Lock()
	p.recv = fn
	p.mu.Unlock()
}

// Subscribe implements Port.
func (p *HubPort) Subscribe(group [6]byte, adi uint32) {
	p.hub.mu.Lock()
	p.groups[multicastGroup{group, adi}] = struct{}{}
	p.hub.mu.Unlock()
}

// Unsubscribe implements Port.
func (p *HubPort) Unsubscribe(group [6]byte, adi uint32) {
	p.hub.mu.Lock()
	delete(p.groups, multicastGroup{group, adi})
	p.hub.mu.Unlock()
}

// Close detaches the port from the hub.
func (p *HubPort) Close() {
	h := p.hub
	h.mu.Lock()
	delete(h.ports, p)
	for mac, q := range h.fdb {
		if q == p {
			delete(h.fdb, mac)
		}
	}
	h.mu.Unlock()
	p.SetReceiver(nil)
}

// WriteFrame implements Port.
func (p *HubPort) WriteFrame(dst, src [6]byte, etherType uint16, payload []byte) error {
	if len(payload) > p.mtu {
		return fmt.Errorf("hub: %d-byte frame exceeds MTU %d", len(payload), p.mtu)
	}
	h := p.hub
	h.mu.RLock()
	if _, ok := h.ports[p]; !ok {
		h.mu.RUnlock()
		return ErrPortClosed
	}
	if src[0]&1 == 0 && h.fdb[src] != p {
		h.mu.RUnlock()
		h.mu.Lock()
		h.fdb[src] = p
		h.mu.Unlock()
		h.mu.RLock()
	}
	if dst[0]&1 == 0 {
		q, ok := h.fdb[dst]
		h.mu.RUnlock()
		if ok {
			if q != p {
				q.deliver(dst, src, etherType, payload)
			}
			return nil
		}
		h.flood(p, nil, dst, src, etherType, payload)
		return nil
	}
	h.mu.RUnlock()
	g := multicastGroup{mac: dst}
	if dst == broadcastMAC {
		ip, ok := arpRequestTarget(etherType, payload)
		if !ok {
			h.flood(p, nil, dst, src, etherType, payload)
			return nil
		}
		g.adi = ip
	}
	h.flood(p, &g, dst, src, etherType, payload)
	return nil
}

// flood delivers to every port but the sender, or only to those subscribed to g.
func (h *Hub) flood(from *HubPort, g *multicastGroup, dst, src [6]byte, etherType uint16, payload []byte) {
	h.mu.RLock()
	targets := make([]*HubPort, 0, len(h.ports))
	for q := range h.ports {
		if q == from {
			continue
		}
		if g != nil {
			if _, ok := q.groups[*g]; !ok {
				continue
			}
		}
		targets = append(targets, q)
	}
	h.mu.RUnlock()
	for _, q := range targets {
		q.deliver(dst, src, etherType, payload)
	}
}

func (p *HubPort) deliver(dst, src [6]byte, etherType uint16, payload []byte) {
	p.mu.Lock()
	if p.recv != nil {
		p.recv(dst, src, etherType, payload)
	}
	p.mu.Unlock()
}

// arpRequestTarget returns the IPv4 address an Ethernet/IPv4 ARP request asks for, as
// ZeroTier's ADI (the address as a big-endian number).
func arpRequestTarget(etherType uint16, p []byte) (uint32, bool) {
	if etherType != 0x0806 || len(p) < 28 {
		return 0, false
	}
	if p[2] != 0x08 || p[3] != 0x00 || p[4] != 6 || p[5] != 4 || p[7] != 1 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p[24:28]), true
}
