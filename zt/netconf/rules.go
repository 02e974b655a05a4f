package netconf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ztnc/ztnc/zt/internal/bin"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// RuleType is the low 6 bits of a rule's type byte. 0..15 are actions, 24..63 matches.
type RuleType uint8

// Rule types (include/ZeroTierOne.h).
const (
	ActionDrop     RuleType = 0
	ActionAccept   RuleType = 1
	ActionTee      RuleType = 2
	ActionWatch    RuleType = 3
	ActionRedirect RuleType = 4
	ActionBreak    RuleType = 5
	ActionPriority RuleType = 6

	MatchSourceAddress   RuleType = 24
	MatchDestAddress     RuleType = 25
	MatchVLANID          RuleType = 26
	MatchVLANPCP         RuleType = 27
	MatchVLANDEI         RuleType = 28
	MatchSourceMAC       RuleType = 29
	MatchDestMAC         RuleType = 30
	MatchIPv4Source      RuleType = 31
	MatchIPv4Dest        RuleType = 32
	MatchIPv6Source      RuleType = 33
	MatchIPv6Dest        RuleType = 34
	MatchIPTOS           RuleType = 35
	MatchIPProtocol      RuleType = 36
	MatchEtherType       RuleType = 37
	MatchICMP            RuleType = 38
	MatchSourcePortRange RuleType = 39
	MatchDestPortRange   RuleType = 40
	MatchCharacteristics RuleType = 41
	MatchFrameSizeRange  RuleType = 42
	MatchRandom          RuleType = 43
	MatchTagsDifference  RuleType = 44
	MatchTagsBitwiseAnd  RuleType = 45
	MatchTagsBitwiseOr   RuleType = 46
	MatchTagsBitwiseXor  RuleType = 47
	MatchTagsEqual       RuleType = 48
	MatchTagSender       RuleType = 49
	MatchTagReceiver     RuleType = 50
	MatchIntegerRange    RuleType = 51
)

// IsAction reports whether t ends or redirects evaluation rather than testing the frame.
func (t RuleType) IsAction() bool { return t <= 15 }

// FieldLen is the field size zerotier-one writes for rules of type t.
func (t RuleType) FieldLen() int {
	switch t {
	case ActionTee, ActionWatch, ActionRedirect:
		return 14
	case MatchSourceAddress, MatchDestAddress, MatchIPv4Source, MatchIPv4Dest:
		return 5
	case MatchVLANID, MatchEtherType:
		return 2
	case MatchVLANPCP, MatchVLANDEI, MatchIPProtocol:
		return 1
	case MatchSourceMAC, MatchDestMAC:
		return 6
	case MatchIPv6Source, MatchIPv6Dest:
		return 17
	case MatchIPTOS, MatchICMP:
		return 3
	case MatchSourcePortRange, MatchDestPortRange, MatchFrameSizeRange, MatchRandom:
		return 4
	case MatchCharacteristics, MatchTagsDifference, MatchTagsBitwiseAnd, MatchTagsBitwiseOr,
		MatchTagsBitwiseXor, MatchTagsEqual, MatchTagSender, MatchTagReceiver:
		return 8
	case MatchIntegerRange:
		return 19
	}
	return 0
}

// Rule is one entry of a rule list: type byte, field length, field. The field is kept as sent
// (big-endian values); the accessors below read the common layouts.
//
//	TEE/WATCH/REDIRECT  [8] address [4] flags [2] length
//	src/dst address     [5] address
//	VLAN id / PCP / DEI [2] / [1] / [1]
//	src/dst MAC         [6]
//	IPv4 src/dst        [4] ip [1] prefix bits; IPv6 src/dst [16] ip [1] bits
//	IP TOS              [1] mask [1] start [1] end
//	IP protocol         [1]; ethertype [2]; ICMP [1] type [1] code [1] flags
//	port / frame size   [2] start [2] end
//	characteristics     [8]; random [4] probability
//	tag matches         [4] tag id [4] value
//	integer range       [8] start [8] end [2] index [1] format
type Rule struct {
	Type  RuleType
	Not   bool // 0x80: invert the match
	Or    bool // 0x40: combine with the previous match by OR instead of AND
	Field []byte
}

// ErrBadRules is returned for a truncated rule list.
var ErrBadRules = errors.New("bad rule list")

// ParseRules reads up to max rules from b (the whole of b must be rules).
func ParseRules(b []byte, max int) ([]Rule, error) {
	var rules []Rule
	r := bin.Reader{B: b}
	for r.Len() > 0 && r.Err == nil {
		if len(rules) == max {
			return nil, fmt.Errorf("%w: more than %d rules", ErrBadRules, max)
		}
		rules = append(rules, readRule(&r))
	}
	if r.Err != nil {
		return nil, fmt.Errorf("%w: rule %d: %v", ErrBadRules, len(rules), r.Err)
	}
	return rules, nil
}

// readRule reads one rule, copying its field.
func readRule(r *bin.Reader) Rule {
	t := r.U8()
	f := r.Copy(int(r.U8()))
	if f == nil {
		f = []byte{}
	}
	return Rule{Type: RuleType(t & 0x3f), Not: t&0x80 != 0, Or: t&0x40 != 0, Field: f}
}

// AppendRules appends the encoding of rules.
func AppendRules(b []byte, rules []Rule) []byte {
	for _, r := range rules {
		b = append(b, r.typeByte(), byte(len(r.Field)))
		b = append(b, r.Field...)
	}
	return b
}

func (r Rule) typeByte() byte {
	t := byte(r.Type) & 0x3f
	if r.Not {
		t |= 0x80
	}
	if r.Or {
		t |= 0x40
	}
	return t
}

// NewRule builds a rule of type t from a field laid out as documented on Rule.
func NewRule(t RuleType, field []byte) Rule { return Rule{Type: t, Field: field} }

// Action returns an action rule without a field (DROP, ACCEPT, BREAK, PRIORITY).
func Action(t RuleType) Rule { return Rule{Type: t, Field: []byte{}} }

// Forward returns a TEE, WATCH or REDIRECT action towards address a.
func Forward(t RuleType, a ztaddr.Address, flags uint32, length uint16) Rule {
	f := binary.BigEndian.AppendUint64(nil, uint64(a))
	f = binary.BigEndian.AppendUint32(f, flags)
	return Rule{Type: t, Field: binary.BigEndian.AppendUint16(f, length)}
}

// MatchAddress returns a source or destination ZeroTier address match.
func MatchAddress(t RuleType, a ztaddr.Address) Rule { return Rule{Type: t, Field: a.Append(nil)} }

// MatchEtherTypeRule returns an ethertype match.
func MatchEtherTypeRule(et uint16) Rule {
	return Rule{Type: MatchEtherType, Field: binary.BigEndian.AppendUint16(nil, et)}
}

// MatchPrefix returns an IPv4 or IPv6 source/destination match; t must be the IPv4 or IPv6
// source or destination type matching p's family.
func MatchPrefix(t RuleType, p netip.Prefix) Rule {
	f := p.Addr().AsSlice()
	return Rule{Type: t, Field: append(f, byte(p.Bits()))}
}

// MatchRange returns a port or frame size range match.
func MatchRange(t RuleType, start, end uint16) Rule {
	f := binary.BigEndian.AppendUint16(nil, start)
	return Rule{Type: t, Field: binary.BigEndian.AppendUint16(f, end)}
}

func (r Rule) at(off, n int) []byte {
	if len(r.Field) < off+n {
		return make([]byte, n)
	}
	return r.Field[off : off+n]
}

// Address is the ZeroTier address of an address match or of a TEE/WATCH/REDIRECT target.
func (r Rule) Address() ztaddr.Address {
	if r.Type.IsAction() {
		return ztaddr.Address(binary.BigEndian.Uint64(r.at(0, 8)) & 0xffffffffff)
	}
	return ztaddr.AddressFrom(r.at(0, 5))
}

// MAC is the address of a MAC match.
func (r Rule) MAC() ztaddr.MAC { return ztaddr.MACFrom(r.at(0, 6)) }

// Uint8 is the one-byte value of VLAN PCP/DEI and IP protocol matches.
func (r Rule) Uint8() uint8 { return r.at(0, 1)[0] }

// Uint16 is the value of VLAN id and ethertype matches.
func (r Rule) Uint16() uint16 { return binary.BigEndian.Uint16(r.at(0, 2)) }

// Range is the [start, end] of port and frame size range matches.
func (r Rule) Range() (start, end uint16) {
	f := r.at(0, 4)
	return binary.BigEndian.Uint16(f), binary.BigEndian.Uint16(f[2:])
}

// Prefix is the network of an IPv4 or IPv6 match.
func (r Rule) Prefix() netip.Prefix {
	if r.Type == MatchIPv4Source || r.Type == MatchIPv4Dest {
		f := r.at(0, 5)
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(f)), int(f[4]))
	}
	f := r.at(0, 17)
	return netip.PrefixFrom(netip.AddrFrom16([16]byte(f)), int(f[16]))
}

// Uint64 is the value of a characteristics match.
func (r Rule) Uint64() uint64 { return binary.BigEndian.Uint64(r.at(0, 8)) }

// Tag is the (id, value) of a tag match.
func (r Rule) Tag() (id, value uint32) {
	f := r.at(0, 8)
	return binary.BigEndian.Uint32(f), binary.BigEndian.Uint32(f[4:])
}

func (r Rule) String() string {
	s := fmt.Sprintf("%d", r.Type)
	if r.Not {
		s = "!" + s
	}
	if r.Or {
		s = "|" + s
	}
	return fmt.Sprintf("%s[%x]", s, r.Field)
}
