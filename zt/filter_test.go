package zt

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

func TestRules(t *testing.T) {
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	tcp := func(src, dst string, sport, dport uint16, flags byte) []byte {
		seg := make([]byte, 20)
		binary.BigEndian.PutUint16(seg, sport)
		binary.BigEndian.PutUint16(seg[2:], dport)
		seg[12], seg[13] = 0x50, flags
		return ipv4Packet(ip(src), ip(dst), 6, seg)
	}
	icmp := ipv4Packet(ip("10.0.0.1"), ip("10.0.0.2"), 1, []byte{8, 0, 0, 0, 0, 1, 0, 1})
	ipv6udp := func() []byte {
		b := make([]byte, 48)
		b[0], b[6] = 0x60, 17
		copy(b[8:], ip("fd00::1").AsSlice())
		copy(b[24:], ip("fd00::2").AsSlice())
		binary.BigEndian.PutUint16(b[40:], 5353)
		binary.BigEndian.PutUint16(b[42:], 53)
		return b
	}()
	from, to := ztaddr.Address(0x1111111111), ztaddr.Address(0x2222222222)
	accept, drop := netconf.Action(netconf.ActionAccept), netconf.Action(netconf.ActionDrop)
	not := func(r netconf.Rule) netconf.Rule { r.Not = true; return r }
	or := func(r netconf.Rule) netconf.Rule { r.Or = true; return r }
	port := func(t netconf.RuleType, lo, hi uint16) netconf.Rule { return netconf.MatchRange(t, lo, hi) }
	tests := []struct {
		name        string
		rules       []netconf.Rule
		etherType   uint16
		frame       []byte
		inbound     bool
		unsupported bool
		want        bool
	}{
		{"empty rules drop", nil, 0x0800, icmp, false, false, false},
		{"accept all", []netconf.Rule{accept}, 0x0800, icmp, false, false, true},
		{"drop all", []netconf.Rule{drop}, 0x0800, icmp, false, false, false},
		{"ethertype match drops ARP", []netconf.Rule{netconf.MatchEtherTypeRule(0x0806), drop, accept}, 0x0806, make([]byte, 28), false, false, false},
		{"ethertype mismatch falls through", []netconf.Rule{netconf.MatchEtherTypeRule(0x0806), drop, accept}, 0x0800, icmp, false, false, true},
		{"NOT ethertype: only IPv4 allowed", []netconf.Rule{not(netconf.MatchEtherTypeRule(0x0800)), drop, accept}, 0x86dd, ipv6udp, false, false, false},
		{"ICMP allowed", []netconf.Rule{netconf.NewRule(netconf.MatchICMP, []byte{8, 0, 0}), accept, drop}, 0x0800, icmp, false, false, true},
		{"ICMP type mismatch is hard no even under NOT", []netconf.Rule{not(netconf.NewRule(netconf.MatchICMP, []byte{0, 0, 0})), accept, drop}, 0x0800, icmp, false, false, false},
		{"dest port 22 accepted", []netconf.Rule{port(netconf.MatchDestPortRange, 22, 22), accept, drop}, 0x0800, tcp("10.0.0.1", "10.0.0.2", 40000, 22, 0x02), false, false, true},
		{"dest port 80 dropped", []netconf.Rule{port(netconf.MatchDestPortRange, 22, 22), accept, drop}, 0x0800, tcp("10.0.0.1", "10.0.0.2", 40000, 80, 0x02), false, false, false},
		{"IPv6 UDP source port", []netconf.Rule{port(netconf.MatchSourcePortRange, 5000, 6000), accept, drop}, 0x86dd, ipv6udp, false, false, true},
		{"IPv4 source prefix", []netconf.Rule{netconf.MatchPrefix(netconf.MatchIPv4Source, netip.MustParsePrefix("10.0.0.0/24")), accept, drop}, 0x0800, icmp, false, false, true},
		{"IPv4 dest prefix mismatch", []netconf.Rule{netconf.MatchPrefix(netconf.MatchIPv4Dest, netip.MustParsePrefix("10.9.0.0/16")), accept, drop}, 0x0800, icmp, false, false, false},
		{"IPv6 dest prefix", []netconf.Rule{netconf.MatchPrefix(netconf.MatchIPv6Dest, netip.MustParsePrefix("fd00::/8")), accept, drop}, 0x86dd, ipv6udp, false, false, true},
		{"IP protocol via IPv6 next header", []netconf.Rule{netconf.NewRule(netconf.MatchIPProtocol, []byte{17}), drop, accept}, 0x86dd, ipv6udp, false, false, false},
		{"source ZT address", []netconf.Rule{netconf.MatchAddress(netconf.MatchSourceAddress, from), drop, accept}, 0x0800, icmp, true, false, false},
		{"dest ZT address mismatch", []netconf.Rule{netconf.MatchAddress(netconf.MatchDestAddress, from), drop, accept}, 0x0800, icmp, true, false, true},
		{"OR of two matches", []netconf.Rule{netconf.MatchEtherTypeRule(0x0806), or(netconf.MatchEtherTypeRule(0x0800)), accept, drop}, 0x0800, icmp, false, false, true},
		{"AND short-circuits", []netconf.Rule{netconf.MatchEtherTypeRule(0x0806), netconf.MatchEtherTypeRule(0x0800), accept, drop}, 0x0800, icmp, false, false, false},
		{"TCP SYN characteristic", []netconf.Rule{netconf.NewRule(netconf.MatchCharacteristics, binary.BigEndian.AppendUint64(nil, 0x02)), drop, accept}, 0x0800, tcp("10.0.0.1", "10.0.0.2", 1, 2, 0x02), false, false, false},
		{"inbound characteristic", []netconf.Rule{netconf.NewRule(netconf.MatchCharacteristics, binary.BigEndian.AppendUint64(nil, charInbound)), drop, accept}, 0x0800, icmp, true, false, false},
		{"frame size range", []netconf.Rule{port(netconf.MatchFrameSizeRange, 0, 30), accept, drop}, 0x0800, icmp, false, false, true},
		{"break ends with no match", []netconf.Rule{netconf.Action(netconf.ActionBreak), accept}, 0x0800, icmp, false, false, false},
		{"TEE continues", []netconf.Rule{netconf.Forward(netconf.ActionTee, 0x3333333333, 0, 0), accept}, 0x0800, icmp, false, false, true},
		{"unsupported match per flag (set)", []netconf.Rule{netconf.NewRule(63, []byte{1}), accept, drop}, 0x0800, icmp, false, true, true},
		{"unsupported match per flag (clear)", []netconf.Rule{netconf.NewRule(63, []byte{1}), accept, drop}, 0x0800, icmp, false, false, false},
		{"priority accepts", []netconf.Rule{netconf.NewRule(netconf.ActionPriority, []byte{1})}, 0x0800, icmp, false, false, true},
		{"truncated IPv4 is hard no", []netconf.Rule{not(netconf.MatchPrefix(netconf.MatchIPv4Source, netip.MustParsePrefix("10.0.0.0/8"))), accept, drop}, 0x0800, icmp[:10], false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &netState{config: &netconf.NetworkConfig{Rules: tc.rules}, unsupported: tc.unsupported}
			m := frameMeta{from: from, to: to, etherType: tc.etherType, src: ztaddr.MAC{2, 1}, dst: ztaddr.MAC{2, 2}}
			if !tc.inbound {
				m.from, m.to = to, from
			}
			e := ruleEval{st: st, m: &m, frame: tc.frame, inbound: tc.inbound}
			if got := e.run(tc.rules); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTagRules(t *testing.T) {
	tag := func(id, v uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, id), v)
	}
	st := &netState{config: &netconf.NetworkConfig{Tags: []*netconf.Tag{{ID: 7, Value: 100}}}}
	accept, drop := netconf.Action(netconf.ActionAccept), netconf.Action(netconf.ActionDrop)
	tests := []struct {
		name     string
		rules    []netconf.Rule
		peerTags map[uint32]uint32
		inbound  bool
		want     bool
	}{
		{"equal tags", []netconf.Rule{netconf.NewRule(netconf.MatchTagsEqual, tag(7, 100)), accept, drop}, map[uint32]uint32{7: 100}, true, true},
		{"different tags", []netconf.Rule{netconf.NewRule(netconf.MatchTagsEqual, tag(7, 100)), accept, drop}, map[uint32]uint32{7: 5}, true, false},
		{"difference within", []netconf.Rule{netconf.NewRule(netconf.MatchTagsDifference, tag(7, 10)), accept, drop}, map[uint32]uint32{7: 95}, true, true},
		{"unknown peer tag inbound", []netconf.Rule{netconf.NewRule(netconf.MatchTagsEqual, tag(7, 100)), accept, drop}, nil, true, false},
		{"unknown peer tag outbound skips the drop", []netconf.Rule{netconf.NewRule(netconf.MatchTagsEqual, tag(7, 100)), drop, accept}, nil, false, true},
		{"sender tag", []netconf.Rule{netconf.NewRule(netconf.MatchTagSender, tag(7, 3)), accept, drop}, map[uint32]uint32{7: 3}, true, true},
		{"receiver tag is ours inbound", []netconf.Rule{netconf.NewRule(netconf.MatchTagReceiver, tag(7, 100)), accept, drop}, nil, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := frameMeta{etherType: 0x0800}
			e := ruleEval{st: st, m: &m, inbound: tc.inbound, peerTags: tc.peerTags}
			if got := e.run(tc.rules); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
