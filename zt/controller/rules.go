package controller

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Rules travel through the API and the database as JSON objects such as
// {"type":"MATCH_ETHERTYPE","etherType":2048,"not":true,"or":false}. These names and fields are
// zerotier-one's; ruleFromJSON accepts what its controller accepts (INTEGER_RANGE and PRIORITY
// are not among them) and ruleToJSON renders what it renders.

// ruleTypeNames maps JSON type names to rule types.
var ruleTypeNames = map[string]netconf.RuleType{
	"ACTION_DROP":                   netconf.ActionDrop,
	"ACTION_ACCEPT":                 netconf.ActionAccept,
	"ACTION_TEE":                    netconf.ActionTee,
	"ACTION_WATCH":                  netconf.ActionWatch,
	"ACTION_REDIRECT":               netconf.ActionRedirect,
	"ACTION_BREAK":                  netconf.ActionBreak,
	"MATCH_SOURCE_ZEROTIER_ADDRESS": netconf.MatchSourceAddress,
	"MATCH_DEST_ZEROTIER_ADDRESS":   netconf.MatchDestAddress,
	"MATCH_VLAN_ID":                 netconf.MatchVLANID,
	"MATCH_VLAN_PCP":                netconf.MatchVLANPCP,
	"MATCH_VLAN_DEI":                netconf.MatchVLANDEI,
	"MATCH_MAC_SOURCE":              netconf.MatchSourceMAC,
	"MATCH_MAC_DEST":                netconf.MatchDestMAC,
	"MATCH_IPV4_SOURCE":             netconf.MatchIPv4Source,
	"MATCH_IPV4_DEST":               netconf.MatchIPv4Dest,
	"MATCH_IPV6_SOURCE":             netconf.MatchIPv6Source,
	"MATCH_IPV6_DEST":               netconf.MatchIPv6Dest,
	"MATCH_IP_TOS":                  netconf.MatchIPTOS,
	"MATCH_IP_PROTOCOL":             netconf.MatchIPProtocol,
	"MATCH_ETHERTYPE":               netconf.MatchEtherType,
	"MATCH_ICMP":                    netconf.MatchICMP,
	"MATCH_IP_SOURCE_PORT_RANGE":    netconf.MatchSourcePortRange,
	"MATCH_IP_DEST_PORT_RANGE":      netconf.MatchDestPortRange,
	"MATCH_CHARACTERISTICS":         netconf.MatchCharacteristics,
	"MATCH_FRAME_SIZE_RANGE":        netconf.MatchFrameSizeRange,
	"MATCH_RANDOM":                  netconf.MatchRandom,
	"MATCH_TAGS_DIFFERENCE":         netconf.MatchTagsDifference,
	"MATCH_TAGS_BITWISE_AND":        netconf.MatchTagsBitwiseAnd,
	"MATCH_TAGS_BITWISE_OR":         netconf.MatchTagsBitwiseOr,
	"MATCH_TAGS_BITWISE_XOR":        netconf.MatchTagsBitwiseXor,
	"MATCH_TAGS_EQUAL":              netconf.MatchTagsEqual,
	"MATCH_TAG_SENDER":              netconf.MatchTagSender,
	"MATCH_TAG_RECEIVER":            netconf.MatchTagReceiver,
}

var ruleNames = func() map[netconf.RuleType]string {
	m := make(map[netconf.RuleType]string, len(ruleTypeNames))
	for name, t := range ruleTypeNames {
		m[t] = name
	}
	return m
}()

// ruleFromJSON converts a JSON rule object; ok is false for anything that is not an object
// with a supported type.
func ruleFromJSON(v any) (r netconf.Rule, ok bool) {
	o, isObject := v.(map[string]any)
	if !isObject {
		return r, false
	}
	t, known := ruleTypeNames[jsonString(o["type"], "")]
	if !known {
		return r, false
	}
	r = netconf.Rule{Type: t, Not: jsonBool(o["not"], false), Or: jsonBool(o["or"], false)}
	u := func(key string, mask uint64) uint64 { return jsonUint(o[key], 0) & mask }
	var f []byte
	switch t {
	case netconf.ActionDrop, netconf.ActionAccept, netconf.ActionBreak:
		f = []byte{}
	case netconf.ActionTee, netconf.ActionWatch, netconf.ActionRedirect:
		f = binary.BigEndian.AppendUint64(nil, hexAddress(o["address"]))
		f = binary.BigEndian.AppendUint32(f, uint32(u("flags", 0xffffffff)))
		length := uint16(0) // REDIRECT carries no length
		if t != netconf.ActionRedirect {
			length = uint16(u("length", 0xffff))
		}
		f = binary.BigEndian.AppendUint16(f, length)
	case netconf.MatchSourceAddress, netconf.MatchDestAddress:
		f = ztaddr.Address(hexAddress(o["zt"])).Append(nil)
	case netconf.MatchVLANID:
		f = binary.BigEndian.AppendUint16(nil, uint16(u("vlanId", 0xffff)))
	case netconf.MatchVLANPCP:
		f = []byte{byte(u("vlanPcp", 0xff))}
	case netconf.MatchVLANDEI:
		f = []byte{byte(u("vlanDei", 0xff))}
	case netconf.MatchSourceMAC, netconf.MatchDestMAC:
		m := parseMAC(jsonString(o["mac"], "0"))
		f = m[:]
	case netconf.MatchIPv4Source, netconf.MatchIPv4Dest, netconf.MatchIPv6Source, netconf.MatchIPv6Dest:
		v4 := t == netconf.MatchIPv4Source || t == netconf.MatchIPv4Dest
		a, ok := parseInet(jsonString(o["ip"], ""))
		zero, bits := netip.IPv6Unspecified(), 128
		if v4 {
			zero, bits = netip.IPv4Unspecified(), 32
		}
		if !ok || a.IP.Is4() != v4 {
			a.IP = zero // no address, or what zerotier-one reads from a sockaddr of the other family
		}
		f = append(a.IP.AsSlice(), byte(min(a.Port&0xff, bits)))
	case netconf.MatchIPTOS:
		f = []byte{byte(u("mask", 0xff)), byte(u("start", 0xff)), byte(u("end", 0xff))}
	case netconf.MatchIPProtocol:
		f = []byte{byte(u("ipProtocol", 0xff))}
	case netconf.MatchEtherType:
		f = binary.BigEndian.AppendUint16(nil, uint16(u("etherType", 0xffff)))
	case netconf.MatchICMP:
		f = []byte{byte(u("icmpType", 0xff)), 0, 0}
		if code, present := o["icmpCode"]; present && code != nil {
			f[1], f[2] = byte(jsonUint(code, 0)), 0x01 // flag 0x01: the code is checked
		}
	case netconf.MatchSourcePortRange, netconf.MatchDestPortRange, netconf.MatchFrameSizeRange:
		start := u("start", 0xffff)
		end := jsonUint(o["end"], start) & 0xffff
		f = binary.BigEndian.AppendUint16(nil, uint16(start))
		f = binary.BigEndian.AppendUint16(f, uint16(end))
	case netconf.MatchCharacteristics:
		var mask uint64
		switch m := o["mask"].(type) {
		case string:
			mask = parseUintPrefix(m, 16)
		default:
			mask = jsonUint(m, 0)
		}
		f = binary.BigEndian.AppendUint64(nil, mask)
	case netconf.MatchRandom:
		f = binary.BigEndian.AppendUint32(nil, uint32(u("probability", 0xffffffff)))
	default: // tag matches
		f = binary.BigEndian.AppendUint32(nil, uint32(u("id", 0xffffffff)))
		f = binary.BigEndian.AppendUint32(f, uint32(u("value", 0xffffffff)))
	}
	r.Field = f
	return r, true
}

// hexAddress reads a ZeroTier address written in hex (as strtoull base 16 reads it).
func hexAddress(v any) uint64 { return parseUintPrefix(jsonString(v, "0"), 16) & 0xffffffffff }

// parseMAC reads a MAC written with or without ':' or '-' separators; like zerotier-one, a
// digit that is not hex counts as 0 and missing digits leave zero bytes.
func parseMAC(s string) (m ztaddr.MAC) {
	s = strings.NewReplacer(":", "", "-", "").Replace(s)
	for i := 0; i < len(m) && 2*i+1 < len(s); i++ {
		m[i] = byte(max(hexDigit(s[2*i]), 0)<<4 | max(hexDigit(s[2*i+1]), 0))
	}
	return m
}

// ruleToJSON renders a rule as zerotier-one's controller stores it, or returns nil for a type
// it cannot render. Actions carry no "not"/"or".
func ruleToJSON(r netconf.Rule) map[string]any {
	name, known := ruleNames[r.Type]
	if !known || len(r.Field) < r.Type.FieldLen() {
		return nil
	}
	o := map[string]any{"type": name}
	f := r.Field
	be16 := func(off int) uint16 { return binary.BigEndian.Uint16(f[off:]) }
	be32 := func(off int) uint32 { return binary.BigEndian.Uint32(f[off:]) }
	switch r.Type {
	case netconf.ActionDrop, netconf.ActionAccept, netconf.ActionBreak:
		return o
	case netconf.ActionTee, netconf.ActionWatch, netconf.ActionRedirect:
		o["address"] = r.Address().String()
		o["flags"] = be32(8)
		if r.Type != netconf.ActionRedirect {
			o["length"] = be16(12)
		}
		return o
	case netconf.MatchSourceAddress, netconf.MatchDestAddress:
		o["zt"] = r.Address().String()
	case netconf.MatchVLANID:
		o["vlanId"] = be16(0)
	case netconf.MatchVLANPCP:
		o["vlanPcp"] = f[0]
	case netconf.MatchVLANDEI:
		o["vlanDei"] = f[0]
	case netconf.MatchSourceMAC, netconf.MatchDestMAC:
		o["mac"] = macString(r.MAC())
	case netconf.MatchIPv4Source, netconf.MatchIPv4Dest, netconf.MatchIPv6Source, netconf.MatchIPv6Dest:
		n := len(f) - 1
		ip, _ := netip.AddrFromSlice(f[:n])
		o["ip"] = inet{IP: ip, Port: int(f[n])}.String()
	case netconf.MatchIPTOS:
		o["mask"], o["start"], o["end"] = f[0], f[1], f[2]
	case netconf.MatchIPProtocol:
		o["ipProtocol"] = f[0]
	case netconf.MatchEtherType:
		o["etherType"] = be16(0)
	case netconf.MatchICMP:
		o["icmpType"] = f[0]
		o["icmpCode"] = nil
		if f[2]&0x01 != 0 {
			o["icmpCode"] = f[1]
		}
	case netconf.MatchSourcePortRange, netconf.MatchDestPortRange, netconf.MatchFrameSizeRange:
		o["start"], o["end"] = be16(0), be16(2)
	case netconf.MatchCharacteristics:
		o["mask"] = fmt.Sprintf("%016x", r.Uint64())
	case netconf.MatchRandom:
		o["probability"] = be32(0)
	default: // tag matches
		o["id"], o["value"] = be32(0), be32(4)
	}
	o["not"], o["or"] = r.Not, r.Or
	return o
}

// macString formats a MAC as aa:bb:cc:dd:ee:ff.
func macString(m ztaddr.MAC) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// normalizeRules keeps the convertible rules of a JSON array, rendered canonically, at most
// maxArray of them.
func normalizeRules(v []any) []map[string]any {
	out := []map[string]any{}
	for _, rv := range v {
		if r, ok := ruleFromJSON(rv); ok {
			if o := ruleToJSON(r); o != nil {
				out = append(out, o)
			}
		}
		if len(out) >= maxArray {
			break
		}
	}
	return out
}

// rulesFromJSON converts stored rules for a config, skipping unusable ones, at most max.
func rulesFromJSON(rules []map[string]any, max int) []netconf.Rule {
	var out []netconf.Rule
	for _, o := range rules {
		if len(out) >= max {
			break
		}
		if r, ok := ruleFromJSON(o); ok {
			out = append(out, r)
		}
	}
	return out
}
