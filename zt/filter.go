package zt

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// The rules engine: zerotier-one's filter (node/Network.cpp, _doZtFilter) applied to frames
// in both directions. Implemented: every match type, and the actions ACCEPT, DROP, BREAK and
// PRIORITY (accept). TEE and WATCH copies are not made (evaluation continues, as if the copy
// target were unreachable); REDIRECT delivers to the original destination. Capabilities are
// not evaluated, so a frame that only a capability would accept is dropped.

// Packet characteristics bits (include/ZeroTierOne.h).
const (
	charInbound      = 0x8000000000000000
	charMulticast    = 0x4000000000000000
	charBroadcast    = 0x2000000000000000
	charIPAuthentic  = 0x1000000000000000
	charMACAuthentic = 0x0800000000000000
	ipProtoTCP       = 0x06
	ipProtoUDP       = 0x11
	ipProtoSCTP      = 0x84
	ipProtoUDPLite   = 0x88
	ipProtoICMP      = 0x01
	ipProtoICMPv6    = 0x3a
)

// verdict of one match: a plain result is inverted by the rule's NOT flag, a hard one is not.
type verdict uint8

const (
	no verdict = iota
	yes
	hardNo
	hardYes
)

func verdictOf(b bool) verdict {
	if b {
		return yes
	}
	return no
}

// filter applies the network's rules to a frame; inbound frames come from m.from, outbound
// ones go to m.to (0 for multicast).
func (nw *Network) filter(st *netState, m frameMeta, payload []byte, inbound bool) bool {
	rules := st.config.Rules
	if len(rules) == 1 && rules[0].Type == netconf.ActionAccept && !rules[0].Not {
		return true // the default network
	}
	var peerTags map[uint32]uint32
	other := m.to
	if inbound {
		other = m.from
	}
	if other != 0 {
		mb := nw.member(other)
		mb.mu.Lock()
		peerTags = mb.tags
		mb.mu.Unlock()
	}
	e := ruleEval{st: st, m: &m, frame: payload, inbound: inbound, peerTags: peerTags}
	return e.run(rules)
}

type ruleEval struct {
	st       *netState
	m        *frameMeta
	frame    []byte
	inbound  bool
	peerTags map[uint32]uint32
	skipDrop bool
}

func (e *ruleEval) run(rules []netconf.Rule) bool {
	set := true
	for _, r := range rules {
		if r.Type.IsAction() {
			if !set {
				set = true
				continue
			}
			switch r.Type {
			case netconf.ActionAccept, netconf.ActionPriority, netconf.ActionRedirect:
				return true
			case netconf.ActionDrop:
				if e.skipDrop {
					e.skipDrop = false
					continue
				}
				return false
			case netconf.ActionBreak:
				return false
			}
			continue // TEE, WATCH and unknown actions
		}
		if !set && !r.Or {
			continue
		}
		var match bool
		switch v := e.match(r); v {
		case hardYes:
			match = true
		case hardNo:
			match = false
		default:
			match = (v == yes) != r.Not
		}
		if r.Or {
			set = set || match
		} else {
			set = set && match
		}
	}
	return false
}

func (e *ruleEval) match(r netconf.Rule) verdict {
	m, f := e.m, e.frame
	ipv4 := m.etherType == ztaddr.EtherTypeIPv4 && len(f) >= 20
	ipv6 := m.etherType == ztaddr.EtherTypeIPv6 && len(f) >= 40
	switch r.Type {
	case netconf.MatchSourceAddress:
		return verdictOf(r.Address() == m.from)
	case netconf.MatchDestAddress:
		return verdictOf(r.Address() == m.to)
	case netconf.MatchVLANID:
		return verdictOf(r.Uint16() == 0)
	case netconf.MatchVLANPCP, netconf.MatchVLANDEI:
		return verdictOf(r.Uint8() == 0)
	case netconf.MatchSourceMAC:
		return verdictOf(r.MAC() == m.src)
	case netconf.MatchDestMAC:
		return verdictOf(r.MAC() == m.dst)
	case netconf.MatchIPv4Source, netconf.MatchIPv4Dest:
		if !ipv4 {
			return hardNo
		}
		off := 12
		if r.Type == netconf.MatchIPv4Dest {
			off = 16
		}
		return verdictOf(r.Prefix().Contains(netip.AddrFrom4([4]byte(f[off : off+4]))))
	case netconf.MatchIPv6Source, netconf.MatchIPv6Dest:
		if !ipv6 {
			return hardNo
		}
		off := 8
		if r.Type == netconf.MatchIPv6Dest {
			off = 24
		}
		return verdictOf(r.Prefix().Contains(netip.AddrFrom16([16]byte(f[off : off+16]))))
	case netconf.MatchIPTOS:
		fl := r.Field
		if len(fl) < 3 {
			return hardNo
		}
		var tos byte
		switch {
		case ipv4:
			tos = f[1]
		case ipv6:
			tos = f[0]<<4 | f[1]>>4
		default:
			return hardNo
		}
		tos &= fl[0]
		return verdictOf(tos >= fl[1] && tos <= fl[2])
	case netconf.MatchIPProtocol:
		proto, _, ok := ipPayload(m.etherType, f)
		if !ok {
			return hardNo
		}
		return verdictOf(r.Uint8() == proto)
	case netconf.MatchEtherType:
		return verdictOf(r.Uint16() == m.etherType)
	case netconf.MatchICMP:
		fl := r.Field
		proto, off, ok := ipPayload(m.etherType, f)
		if len(fl) < 3 || !ok || (proto != ipProtoICMP && proto != ipProtoICMPv6) || (proto == ipProtoICMP) != ipv4 || len(f) < off+2 {
			return hardNo
		}
		if fl[0] != f[off] {
			return hardNo
		}
		if fl[2]&0x01 != 0 {
			return verdictOf(f[off+1] == fl[1])
		}
		return hardYes
	case netconf.MatchSourcePortRange, netconf.MatchDestPortRange:
		proto, off, ok := ipPayload(m.etherType, f)
		if !ok {
			return hardNo
		}
		port := -1
		switch proto {
		case ipProtoTCP, ipProtoUDP, ipProtoSCTP, ipProtoUDPLite:
			if len(f) > off+4 {
				if r.Type == netconf.MatchDestPortRange {
					off += 2
				}
				port = int(binary.BigEndian.Uint16(f[off:]))
			}
		}
		lo, hi := r.Range()
		return verdictOf(port >= 0 && port >= int(lo) && port <= int(hi))
	case netconf.MatchCharacteristics:
		return verdictOf(e.characteristics()&r.Uint64() != 0)
	case netconf.MatchFrameSizeRange:
		lo, hi := r.Range()
		return verdictOf(len(f) >= int(lo) && len(f) <= int(hi))
	case netconf.MatchRandom:
		if len(r.Field) < 4 {
			return hardNo
		}
		return verdictOf(rand.Uint32() <= binary.BigEndian.Uint32(r.Field))
	case netconf.MatchTagsDifference, netconf.MatchTagsBitwiseAnd, netconf.MatchTagsBitwiseOr,
		netconf.MatchTagsBitwiseXor, netconf.MatchTagsEqual:
		return e.matchTags(r)
	case netconf.MatchTagSender, netconf.MatchTagReceiver:
		id, value := r.Tag()
		if (r.Type == netconf.MatchTagSender) == e.inbound {
			if v, ok := e.peerTags[id]; ok {
				return verdictOf(v == value)
			}
			if r.Type == netconf.MatchTagReceiver {
				e.skipDrop = true
				return hardYes
			}
			return hardNo
		}
		if v, ok := e.localTag(id); ok {
			return verdictOf(v == value)
		}
		return hardNo
	case netconf.MatchIntegerRange:
		return verdictOf(integerInRange(r.Field, f))
	}
	return verdictOf(e.st.unsupported)
}

func (e *ruleEval) localTag(id uint32) (uint32, bool) {
	for _, t := range e.st.config.Tags {
		if t.ID == id {
			return t.Value, true
		}
	}
	return 0, false
}

func (e *ruleEval) matchTags(r netconf.Rule) verdict {
	id, want := r.Tag()
	local, ok := e.localTag(id)
	if !ok {
		return hardNo
	}
	remote, ok := e.peerTags[id]
	if !ok {
		if e.inbound {
			return hardNo
		}
		// Outbound we may not know the receiver's tags yet; it filters on its side.
		e.skipDrop = true
		return hardYes
	}
	switch r.Type {
	case netconf.MatchTagsDifference:
		d := local - remote
		if remote > local {
			d = remote - local
		}
		return verdictOf(d <= want)
	case netconf.MatchTagsBitwiseAnd:
		return verdictOf(local&remote == want)
	case netconf.MatchTagsBitwiseOr:
		return verdictOf(local|remote == want)
	case netconf.MatchTagsBitwiseXor:
		return verdictOf(local^remote == want)
	default:
		return verdictOf(local == want && remote == want)
	}
}

// characteristics computes the bits a CHARACTERISTICS match tests: direction, multicast and
// broadcast, and TCP flags. (Sender authentication through certificates of ownership is
// only computed for our own outbound frames.)
func (e *ruleEval) characteristics() uint64 {
	var cf uint64
	m, f := e.m, e.frame
	if e.inbound {
		cf |= charInbound
	}
	if m.dst.IsMulticast() {
		cf |= charMulticast
	}
	if m.dst == ztaddr.Broadcast {
		cf |= charBroadcast
	}
	if !e.inbound {
		if src, ok := sourceIP(m.etherType, f); ok {
			for _, c := range e.st.config.COOs {
				if c.Owns(src) {
					cf |= charIPAuthentic
				}
			}
		}
	}
	if proto, off, ok := ipPayload(m.etherType, f); ok && proto == ipProtoTCP && len(f) > off+13 {
		cf |= uint64(f[off+13]) | uint64(f[off+12]&0x0f)<<8
	}
	return cf
}

func sourceIP(etherType uint16, f []byte) (netip.Addr, bool) {
	switch {
	case etherType == ztaddr.EtherTypeIPv4 && len(f) >= 20:
		return netip.AddrFrom4([4]byte(f[12:16])), true
	case etherType == ztaddr.EtherTypeIPv6 && len(f) >= 40:
		return netip.AddrFrom16([16]byte(f[8:24])), true
	case etherType == ztaddr.EtherTypeARP && len(f) >= 28:
		return netip.AddrFrom4([4]byte(f[14:18])), true
	}
	return netip.Addr{}, false
}

// ipPayload finds the transport protocol and the offset of its header in an IPv4 or IPv6
// packet (walking IPv6 extension headers).
func ipPayload(etherType uint16, f []byte) (proto byte, off int, ok bool) {
	switch etherType {
	case ztaddr.EtherTypeIPv4:
		if len(f) < 20 {
			return 0, 0, false
		}
		return f[9], int(f[0]&0x0f) * 4, true
	case ztaddr.EtherTypeIPv6:
		if len(f) < 40 {
			return 0, 0, false
		}
		next, off := f[6], 40
		for range 8 {
			switch next {
			case 0, 43, 60, 135: // hop-by-hop, routing, destination options, mobility
				if len(f) < off+2 {
					return 0, 0, false
				}
				next, off = f[off], off+(int(f[off+1])+1)*8
			case 44: // fragment
				if len(f) < off+8 {
					return 0, 0, false
				}
				next, off = f[off], off+8
			case 51: // authentication header
				if len(f) < off+2 {
					return 0, 0, false
				}
				next, off = f[off], off+(int(f[off+1])+2)*4
			case 59: // no next header
				return 0, 0, false
			default:
				return next, off, off <= len(f)
			}
		}
	}
	return 0, 0, false
}

// integerInRange evaluates an INTEGER_RANGE match: [8] start [8] end offset [2] index
// [1] format (bit 7 little-endian, low 6 bits = width in bits - 1).
func integerInRange(field, f []byte) bool {
	if len(field) < 19 {
		return false
	}
	start, span := binary.BigEndian.Uint64(field), binary.BigEndian.Uint64(field[8:])
	idx, format := int(binary.BigEndian.Uint16(field[16:])), field[18]
	bits := int(format&63) + 1
	n := (bits + 7) / 8
	var v uint64
	if format&0x80 == 0 {
		i := idx + 8 - n
		if i+n <= len(f) {
			for _, c := range f[i : i+n] {
				v = v<<8 | uint64(c)
			}
		}
		v &= ^uint64(0) >> (64 - bits)
	} else {
		if idx+n <= len(f) {
			for _, c := range f[idx : idx+n] {
				v = v>>8 | uint64(c)<<56
			}
		}
		v >>= 64 - bits
	}
	return v >= start && v <= start+span
}
