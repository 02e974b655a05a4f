package controller

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Credential time windows: how far apart two members' COM timestamps may be (ctmd).
const (
	defaultCredentialWindow = netconf.DefaultCredentialTimeMaxDelta
	minCredentialWindow     = 5 * 60 * 1000
	maxCredentialWindow     = 2 * 60 * 60 * 1000
)

// configRequest is what a member's configuration is made of.
type configRequest struct {
	nwid      ztaddr.NetworkID
	network   *network
	member    *member // updated with what the answer assigns: addresses, default tags and capabilities
	newMember bool    // the member record was created by this request
	identity  *identity.Identity
	metadata  *netconf.Dictionary
	now       int64
	taken     func(netip.Addr) bool // addresses held by any member of the network
	bridges   []ztaddr.Address      // members that are active bridges, ascending
	rand      *rand.Rand
}

// buildConfig makes an authorized member's network configuration the way zerotier-one's
// controller does, with unsigned credentials (see signConfig).
func buildConfig(q *configRequest) *netconf.NetworkConfig {
	n, m := q.network, q.member
	ctmd := int64(defaultCredentialWindow)
	if n.CertificateTimeoutWindowSize != nil {
		ctmd = *n.CertificateTimeoutWindowSize
	}
	ctmd = min(max(ctmd, minCredentialWindow), maxCredentialWindow)
	nc := &netconf.NetworkConfig{
		Version:                netconf.Version,
		NetworkID:              q.nwid,
		Timestamp:              q.now,
		CredentialTimeMaxDelta: ctmd,
		Revision:               n.Revision,
		IssuedTo:               q.identity.Address(),
		Type:                   netconf.TypePrivate,
		Name:                   truncate(n.Name, netconf.MaxNameLength),
		MTU:                    int(min(max(uint32(n.MTU), netconf.MinMTU), netconf.MaxMTU)),
		MulticastLimit:         uint64(uint32(n.MulticastLimit)),
	}
	if !n.Private {
		nc.Type = netconf.TypePublic
	}
	if n.EnableBroadcast {
		nc.Flags |= netconf.FlagEnableBroadcast
	}
	if t := m.RemoteTraceTarget; t != nil && len(*t) == 10 {
		nc.RemoteTraceTarget, nc.RemoteTraceLevel = ztaddr.Address(parseUintPrefix(*t, 16)), m.RemoteTraceLevel
	} else {
		if t := n.RemoteTraceTarget; t != nil && len(*t) == 10 {
			nc.RemoteTraceTarget = ztaddr.Address(parseUintPrefix(*t, 16))
		}
		nc.RemoteTraceLevel = n.RemoteTraceLevel
	}
	for _, b := range q.bridges {
		nc.Specialists = append(nc.Specialists, uint64(b)|netconf.SpecialistActiveBridge)
	}

	if q.metadata.Uint("revr", 0) == 0 {
		// Nodes without a rules engine get "accept everything"; they could not apply more.
		nc.Rules = []netconf.Rule{netconf.Action(netconf.ActionAccept)}
	} else {
		nc.Rules = rulesFromJSON(n.Rules, netconf.MaxRules)
		nc.Capabilities = memberCapabilities(q)
		nc.Tags = memberTags(q)
	}
	nc.Routes = configRoutes(n.Routes)
	assignAddresses(q, nc)
	nc.DNS = configDNS(n.DNS)

	if len(nc.StaticIPs) > 0 {
		coo := &netconf.COO{NetworkID: q.nwid, Timestamp: q.now, ID: 1, IssuedTo: q.identity.Address()}
		for _, a := range nc.StaticIPs[:min(len(nc.StaticIPs), netconf.MaxThings)] {
			coo.AddIP(a.AddrPort.Addr())
		}
		nc.COOs = []*netconf.COO{coo}
	}
	nc.COM = netconf.NewCOM(q.now, uint64(ctmd), q.nwid, q.identity)
	return nc
}

// signConfig signs every credential of nc as the controller.
func signConfig(nc *netconf.NetworkConfig, controller *identity.Identity) error {
	if err := nc.COM.Sign(controller); err != nil {
		return err
	}
	for _, c := range nc.Capabilities {
		if err := c.Sign(controller, nc.IssuedTo); err != nil {
			return err
		}
	}
	for _, t := range nc.Tags {
		if err := t.Sign(controller); err != nil {
			return err
		}
	}
	for _, c := range nc.COOs {
		if err := c.Sign(controller); err != nil {
			return err
		}
	}
	return nil
}

// memberCapabilities issues the capabilities the member holds; a new member first receives
// the network's default capabilities.
func memberCapabilities(q *configRequest) []*netconf.Capability {
	byID := map[uint32]*capabilitySpec{}
	for i := range q.network.Capabilities {
		c := &q.network.Capabilities[i]
		id := uint32(c.ID)
		byID[id] = c
		if q.newMember && c.Default && !hasCapability(q.member.Capabilities, id) {
			q.member.Capabilities = append(q.member.Capabilities, uint64(id))
		}
	}
	var caps []*netconf.Capability
	for _, id := range q.member.Capabilities {
		spec, ok := byID[uint32(id)]
		if !ok {
			continue
		}
		caps = append(caps, &netconf.Capability{
			NetworkID:       q.nwid,
			Timestamp:       q.now,
			ID:              uint32(id),
			Rules:           rulesFromJSON(spec.Rules, netconf.MaxCapabilityRules),
			MaxCustodyChain: 1,
		})
		if len(caps) >= netconf.MaxCapabilities {
			break
		}
	}
	return caps
}

func hasCapability(caps []uint64, id uint32) bool {
	for _, c := range caps {
		if uint32(c) == id {
			return true
		}
	}
	return false
}

// memberTags issues the member's tags, adding to the member the network's defaults for tags
// it lacks.
func memberTags(q *configRequest) []*netconf.Tag {
	values := map[uint32]uint32{}
	for _, t := range q.member.Tags {
		values[uint32(t[0])] = uint32(t[1])
	}
	for _, spec := range q.network.Tags {
		id := uint32(spec.ID)
		if _, has := values[id]; spec.Default != nil && !has {
			values[id] = uint32(*spec.Default)
			q.member.Tags = append(q.member.Tags, [2]uint64{uint64(id), *spec.Default})
		}
	}
	var tags []*netconf.Tag
	for _, id := range slices.Sorted(maps.Keys(values)) {
		tags = append(tags, &netconf.Tag{NetworkID: q.nwid, Timestamp: q.now, ID: id, Value: values[id], IssuedTo: q.identity.Address()})
		if len(tags) >= netconf.MaxTags {
			break
		}
	}
	return tags
}

// configRoutes converts the network's routes; a gateway of the other family is dropped.
func configRoutes(routes []route) []netconf.Route {
	var out []netconf.Route
	for _, r := range routes {
		if len(out) >= netconf.MaxRoutes {
			break
		}
		t, ok := parseInet(r.Target)
		if !ok {
			continue
		}
		cr := netconf.Route{Target: ztaddr.InetAddressOf(netip.AddrPortFrom(t.IP, uint16(t.Port)))}
		if r.Via != nil {
			if v, ok := parseInet(*r.Via); ok && v.IP.Is4() == t.IP.Is4() {
				cr.Via = ztaddr.InetAddressOf(netip.AddrPortFrom(v.IP, uint16(v.Port)))
			}
		}
		out = append(out, cr)
	}
	return out
}

// assignAddresses fills nc's managed addresses in zerotier-one's order: RFC 4193 and 6PLANE,
// the member's stored assignments that some route covers, then new ones from the pools (IPv6
// first), which are added to the member's record.
func assignAddresses(q *configRequest, nc *netconf.NetworkConfig) {
	n, m, addr := q.network, q.member, q.identity.Address()
	add := func(p netip.Prefix) {
		if len(nc.StaticIPs) < netconf.MaxStaticIPs {
			nc.StaticIPs = append(nc.StaticIPs, ztaddr.InetAddressOfPrefix(p))
		}
	}
	if !m.NoAutoAssignIPs {
		if n.V6AssignMode["rfc4193"] {
			add(ztaddr.RFC4193(q.nwid, addr))
			nc.Flags |= netconf.FlagIPv6NDPEmulation
		}
		if n.V6AssignMode["6plane"] {
			add(ztaddr.SixPlane(q.nwid, addr))
			nc.Flags |= netconf.FlagIPv6NDPEmulation
		}
	}

	have4, have6 := false, false
	for _, s := range m.IPAssignments {
		a, ok := parseInet(s)
		if !ok {
			continue
		}
		bits := -1
		for _, r := range nc.Routes {
			t := r.Target.AddrPort
			if (inet{IP: t.Addr(), Port: int(t.Port())}).contains(a.IP) {
				bits = max(bits, int(t.Port()))
			}
		}
		if bits < 0 {
			continue
		}
		add(netip.PrefixFrom(a.IP, bits))
		if a.IP.Is4() {
			have4 = true
		} else {
			have6 = true
		}
	}

	if m.NoAutoAssignIPs {
		return
	}
	claim := func(p netip.Prefix) {
		m.IPAssignments = append(m.IPAssignments, p.Addr().String())
		add(p)
	}
	if n.V6AssignMode["zt"] && !have6 {
		for _, pl := range n.IPAssignmentPools {
			s, ok1 := parseInet(pl.IPRangeStart)
			e, ok2 := parseInet(pl.IPRangeEnd)
			if !ok1 || !ok2 || !s.IP.Is6() || !e.IP.Is6() {
				continue
			}
			if p, ok := assignIPv6(s.IP, e.IP, nc.Routes, addr, q.taken, q.rand); ok {
				claim(p)
				break
			}
		}
	}
	if n.V4AssignMode["zt"] && !have4 {
		for _, pl := range n.IPAssignmentPools {
			s, ok1 := parseInet(pl.IPRangeStart)
			e, ok2 := parseInet(pl.IPRangeEnd)
			if !ok1 || !ok2 || !s.IP.Is4() || !e.IP.Is4() {
				continue
			}
			if p, ok := assignIPv4(s.IP, e.IP, nc.Routes, addr, q.taken); ok {
				claim(p)
				break
			}
		}
	}
}

// configDNS reads the network's "dns" object: a search domain and up to four servers.
func configDNS(raw json.RawMessage) netconf.DNS {
	var d netconf.DNS
	v, _ := decodeJSON(raw)
	o, ok := v.(map[string]any)
	if !ok {
		return d
	}
	d.Domain = truncate(jsonString(o["domain"], ""), 127)
	servers, _ := o["servers"].([]any)
	for i, s := range servers[:min(len(servers), netconf.MaxDNSServers)] {
		if a, ok := parseInet(jsonString(s, "")); ok {
			d.Servers[i] = ztaddr.InetAddressOf(netip.AddrPortFrom(a.IP, uint16(a.Port)))
		}
	}
	return d
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
