package ztinterop

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ztnc/ztnc/zt"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// host is the least of a TCP/IP stack over a zt.Network, built by hand for these tests: it
// answers ARP for its address and ICMP echo requests, resolves neighbours with ARP and pings
// them. (The real stack is netstack; here we test the node underneath it.)
type host struct {
	nw  *zt.Network
	mac [6]byte
	ip  netip.Addr
	ip6 netip.Addr // optional

	mu        sync.Mutex
	neighbors map[netip.Addr][6]byte
	replies   map[uint16]bool // echo replies received, by sequence number
	requests  int             // echo requests answered
	changed   chan struct{}
}

func newHost(nw *zt.Network, ip netip.Addr) *host {
	h := &host{nw: nw, mac: nw.MAC(), ip: ip, neighbors: map[netip.Addr][6]byte{}, replies: map[uint16]bool{},
		changed: make(chan struct{}, 1)}
	nw.SetReceiver(h.receive)
	return h
}

func (h *host) receive(dst, src [6]byte, etherType uint16, p []byte) {
	switch etherType {
	case ztaddr.EtherTypeARP:
		if len(p) < 28 || binary.BigEndian.Uint16(p[6:]) > 2 {
			return
		}
		sender := netip.AddrFrom4([4]byte(p[14:18]))
		target := netip.AddrFrom4([4]byte(p[24:28]))
		h.mu.Lock()
		h.neighbors[sender] = [6]byte(p[8:14])
		h.mu.Unlock()
		h.signal()
		if p[7] == 1 && target == h.ip {
			go h.nw.WriteFrame(src, h.mac, ztaddr.EtherTypeARP, arp(2, h.mac, h.ip, src, sender))
		}
	case ztaddr.EtherTypeIPv6:
		h.receive6(src, p)
	case ztaddr.EtherTypeIPv4:
		if len(p) < 28 || p[9] != 1 || netip.AddrFrom4([4]byte(p[16:20])) != h.ip {
			return
		}
		ihl := int(p[0]&0x0f) * 4
		icmp := p[ihl:]
		from := netip.AddrFrom4([4]byte(p[12:16]))
		switch icmp[0] {
		case 8: // echo request
			reply := append([]byte{0, 0, 0, 0}, icmp[4:]...)
			h.mu.Lock()
			h.requests++
			h.mu.Unlock()
			go h.nw.WriteFrame(src, h.mac, ztaddr.EtherTypeIPv4, ipv4(h.ip, from, 1, icmpChecksum(reply)))
		case 0: // echo reply
			h.mu.Lock()
			h.replies[binary.BigEndian.Uint16(icmp[6:])] = true
			h.mu.Unlock()
		}
		h.signal()
	}
}

func (h *host) signal() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// resolve ARPs for ip until it answers.
func (h *host) resolve(t *testing.T, ip netip.Addr, timeout time.Duration) [6]byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h.mu.Lock()
		mac, ok := h.neighbors[ip]
		h.mu.Unlock()
		if ok {
			return mac
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ARP reply from %s within %v", ip, timeout)
		}
		h.nw.WriteFrame(ztaddr.Broadcast, h.mac, ztaddr.EtherTypeARP, arp(1, h.mac, h.ip, [6]byte{}, ip))
		select {
		case <-h.changed:
		case <-time.After(time.Second):
		}
	}
}

// ping sends echo requests to ip until one is answered.
func (h *host) ping(t *testing.T, ip netip.Addr, mac [6]byte, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for seq := uint16(1); ; seq++ {
		req := icmpChecksum(append([]byte{8, 0, 0, 0, 0x12, 0x34, byte(seq >> 8), byte(seq)}, []byte("ztnc interop")...))
		h.nw.WriteFrame(mac, h.mac, ztaddr.EtherTypeIPv4, ipv4(h.ip, ip, 1, req))
		wait := time.After(time.Second)
		for {
			h.mu.Lock()
			ok := h.replies[seq]
			h.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no echo reply from %s within %v", ip, timeout)
			}
			select {
			case <-h.changed:
				continue
			case <-wait:
			}
			break
		}
	}
}

func (h *host) answered() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests
}

func arp(op byte, sha [6]byte, spa netip.Addr, tha [6]byte, tpa netip.Addr) []byte {
	b := []byte{0, 1, 8, 0, 6, 4, 0, op}
	b = append(b, sha[:]...)
	b = append(b, spa.AsSlice()...)
	b = append(b, tha[:]...)
	return append(b, tpa.AsSlice()...)
}

func ipv4(src, dst netip.Addr, proto byte, payload []byte) []byte {
	h := make([]byte, 20)
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	copy(h[12:], src.AsSlice())
	copy(h[16:], dst.AsSlice())
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return append(h, payload...)
}

func icmpChecksum(b []byte) []byte {
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// ICMPv6 types.
const (
	icmp6EchoRequest = 128
	icmp6EchoReply   = 129
	icmp6NS          = 135
	icmp6NA          = 136
)

func (h *host) receive6(src [6]byte, p []byte) {
	if len(p) < 48 || p[6] != 58 {
		return
	}
	from, to := netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
	icmp := p[40:]
	switch icmp[0] {
	case icmp6NS:
		if len(icmp) < 24 || netip.AddrFrom16([16]byte(icmp[8:24])) != h.ip6 {
			return
		}
		na := append([]byte{icmp6NA, 0, 0, 0, 0x60, 0, 0, 0}, h.ip6.AsSlice()...)
		na = append(append(na, 2, 1), h.mac[:]...)
		go h.nw.WriteFrame(src, h.mac, ztaddr.EtherTypeIPv6, ipv6(h.ip6, from, 255, na))
	case icmp6NA:
		if len(icmp) < 24 {
			return
		}
		h.mu.Lock()
		h.neighbors[netip.AddrFrom16([16]byte(icmp[8:24]))] = src
		h.mu.Unlock()
	case icmp6EchoRequest:
		if to != h.ip6 {
			return
		}
		reply := append([]byte{icmp6EchoReply, 0, 0, 0}, icmp[4:]...)
		h.mu.Lock()
		h.requests++
		h.mu.Unlock()
		go h.nw.WriteFrame(src, h.mac, ztaddr.EtherTypeIPv6, ipv6(h.ip6, from, 64, reply))
	case icmp6EchoReply:
		if len(icmp) >= 8 {
			h.mu.Lock()
			h.replies[binary.BigEndian.Uint16(icmp[6:])] = true
			h.mu.Unlock()
		}
	default:
		return
	}
	h.signal()
}

// resolve6 sends neighbor solicitations for ip (to its solicited-node multicast group) until
// it is advertised.
func (h *host) resolve6(t *testing.T, ip netip.Addr, timeout time.Duration) [6]byte {
	t.Helper()
	a := ip.As16()
	group := netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]})
	mac := [6]byte{0x33, 0x33, 0xff, a[13], a[14], a[15]}
	deadline := time.Now().Add(timeout)
	for {
		h.mu.Lock()
		m, ok := h.neighbors[ip]
		h.mu.Unlock()
		if ok {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no neighbor advertisement from %s within %v", ip, timeout)
		}
		ns := append([]byte{icmp6NS, 0, 0, 0, 0, 0, 0, 0}, ip.AsSlice()...)
		ns = append(append(ns, 1, 1), h.mac[:]...)
		h.nw.WriteFrame(mac, h.mac, ztaddr.EtherTypeIPv6, ipv6(h.ip6, group, 255, ns))
		select {
		case <-h.changed:
		case <-time.After(time.Second):
		}
	}
}

// ping6 sends ICMPv6 echo requests to ip until one is answered.
func (h *host) ping6(t *testing.T, ip netip.Addr, mac [6]byte, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for seq := uint16(1000); ; seq++ {
		req := append([]byte{icmp6EchoRequest, 0, 0, 0, 0x12, 0x34, byte(seq >> 8), byte(seq)}, "ztnc v6"...)
		h.nw.WriteFrame(mac, h.mac, ztaddr.EtherTypeIPv6, ipv6(h.ip6, ip, 64, req))
		wait := time.After(time.Second)
	poll:
		for {
			h.mu.Lock()
			ok := h.replies[seq]
			h.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no ICMPv6 echo reply from %s within %v", ip, timeout)
			}
			select {
			case <-h.changed:
			case <-wait:
				break poll
			}
		}
	}
}

// ipv6 builds an IPv6 packet carrying ICMPv6 msg (its checksum filled in).
func ipv6(src, dst netip.Addr, hopLimit byte, msg []byte) []byte {
	h := make([]byte, 40)
	h[0], h[6], h[7] = 0x60, 58, hopLimit
	binary.BigEndian.PutUint16(h[4:], uint16(len(msg)))
	copy(h[8:], src.AsSlice())
	copy(h[24:], dst.AsSlice())
	pseudo := append(append([]byte{}, h[8:40]...), 0, 0, byte(len(msg)>>8), byte(len(msg)), 0, 0, 0, 58)
	msg[2], msg[3] = 0, 0
	binary.BigEndian.PutUint16(msg[2:], checksum(append(pseudo, msg...)))
	return append(h, msg...)
}
