package controller

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// network is a network record, with zerotier-one's field names, defaults and quirks (for
// instance an unset "dns" is [] and unset "authTokens" is [null]).
type network struct {
	AuthTokens                   json.RawMessage  `json:"authTokens"`
	AuthorizationEndpoint        string           `json:"authorizationEndpoint"`
	Capabilities                 []capabilitySpec `json:"capabilities"`
	CertificateTimeoutWindowSize *int64           `json:"certificateTimeoutWindowSize,omitempty"`
	ClientID                     string           `json:"clientId"`
	CreationTime                 int64            `json:"creationTime"`
	DNS                          json.RawMessage  `json:"dns"`
	EnableBroadcast              bool             `json:"enableBroadcast"`
	ID                           string           `json:"id"`
	IPAssignmentPools            []pool           `json:"ipAssignmentPools"`
	MTU                          uint64           `json:"mtu"`
	MulticastLimit               uint64           `json:"multicastLimit"`
	Name                         string           `json:"name"`
	NWID                         string           `json:"nwid"`
	Objtype                      string           `json:"objtype"`
	Private                      bool             `json:"private"`
	RemoteTraceLevel             uint64           `json:"remoteTraceLevel"`
	RemoteTraceTarget            *string          `json:"remoteTraceTarget"`
	Revision                     uint64           `json:"revision"`
	Routes                       []route          `json:"routes"`
	Rules                        []map[string]any `json:"rules"`
	RulesSource                  string           `json:"rulesSource"`
	SSOEnabled                   bool             `json:"ssoEnabled"`
	Tags                         []tagSpec        `json:"tags"`
	V4AssignMode                 map[string]bool  `json:"v4AssignMode"`
	V6AssignMode                 map[string]bool  `json:"v6AssignMode"`

	extra map[string]json.RawMessage
}

// capabilitySpec defines a capability members may be given ("default": given to new members).
type capabilitySpec struct {
	Default bool             `json:"default"`
	ID      uint64           `json:"id"`
	Rules   []map[string]any `json:"rules"`
}

// tagSpec defines a tag; a non-null default is given to members that lack the tag.
type tagSpec struct {
	Default *uint64 `json:"default"`
	ID      uint64  `json:"id"`
}

// route is a managed route: target "ip/bits", via an IP or null for on-link.
type route struct {
	Target string  `json:"target"`
	Via    *string `json:"via"`
}

// pool is an auto-assignment range, both ends included.
type pool struct {
	IPRangeEnd   string `json:"ipRangeEnd"`
	IPRangeStart string `json:"ipRangeStart"`
}

// Defaults zerotier-one gives new networks.
const (
	defaultMulticastLimit = 32
	unsetDNS              = "[]"
	unsetAuthTokens       = "[null]"
)

// newNetwork returns a network record with zerotier-one's defaults.
func newNetwork(id ztaddr.NetworkID, now int64) *network {
	n := &network{}
	n.init(func(string) bool { return false }, now)
	n.ID, n.NWID = id.String(), id.String()
	return n
}

// init gives every field that is not present its default, like zerotier-one's initNetwork.
func (n *network) init(present func(string) bool, now int64) {
	set := func(key string, apply func()) {
		if !present(key) {
			apply()
		}
	}
	set("private", func() { n.Private = true })
	set("creationTime", func() { n.CreationTime = now })
	set("name", func() { n.Name = "" })
	set("multicastLimit", func() { n.MulticastLimit = defaultMulticastLimit })
	set("enableBroadcast", func() { n.EnableBroadcast = true })
	set("v4AssignMode", func() { n.V4AssignMode = map[string]bool{"zt": false} })
	set("v6AssignMode", func() { n.V6AssignMode = map[string]bool{"rfc4193": false, "zt": false, "6plane": false} })
	set("authTokens", func() { n.AuthTokens = json.RawMessage(unsetAuthTokens) })
	set("capabilities", func() { n.Capabilities = []capabilitySpec{} })
	set("tags", func() { n.Tags = []tagSpec{} })
	set("routes", func() { n.Routes = []route{} })
	set("ipAssignmentPools", func() { n.IPAssignmentPools = []pool{} })
	set("mtu", func() { n.MTU = netconf.DefaultMTU })
	set("remoteTraceTarget", func() { n.RemoteTraceTarget = nil })
	set("rulesSource", func() { n.RulesSource = "" })
	set("rules", func() {
		n.Rules = []map[string]any{{"not": false, "or": false, "type": "ACTION_ACCEPT"}}
	})
	set("dns", func() { n.DNS = json.RawMessage(unsetDNS) })
	set("ssoEnabled", func() { n.SSOEnabled = false })
	set("clientId", func() { n.ClientID = "" })
	set("authorizationEndpoint", func() { n.AuthorizationEndpoint = "" })
	n.Objtype = "network"
	// zerotier-one tests for a misspelt "removeTraceLevel", so this one is reset every time.
	n.RemoteTraceLevel = 0
}

type networkFields network // network without its JSON methods

// MarshalJSON writes the record as zerotier-one does.
func (n *network) MarshalJSON() ([]byte, error) {
	return marshalRecord((*networkFields)(n), n.extra)
}

// UnmarshalJSON reads a stored record; absent fields get their defaults.
func (n *network) UnmarshalJSON(b []byte) error {
	*n = network{}
	present, extra, err := unmarshalRecord(b, (*networkFields)(n))
	if err != nil {
		return err
	}
	rtl := n.RemoteTraceLevel
	n.init(func(k string) bool { return present[k] }, 0)
	n.RemoteTraceLevel = rtl
	n.extra = extra
	return nil
}

// clone returns a deep copy.
func (n *network) clone() *network {
	b, err := n.MarshalJSON()
	if err != nil {
		panic("controller: network record does not encode: " + err.Error())
	}
	c := &network{}
	if err := c.UnmarshalJSON(b); err != nil {
		panic("controller: network record does not decode: " + err.Error())
	}
	return c
}

// update applies the fields of an API POST body the way zerotier-one does: present fields are
// converted leniently and normalized; a body that is not an object changes nothing.
func (n *network) update(b map[string]any, now int64) {
	n.init(func(k string) bool { return true }, now)
	has := func(k string) bool { _, ok := b[k]; return ok }
	if has("name") {
		n.Name = jsonString(b["name"], "")
	}
	if has("private") {
		n.Private = jsonBool(b["private"], true)
	}
	if has("enableBroadcast") {
		n.EnableBroadcast = jsonBool(b["enableBroadcast"], false)
	}
	if has("multicastLimit") {
		n.MulticastLimit = jsonUint(b["multicastLimit"], defaultMulticastLimit)
	}
	if has("mtu") {
		n.MTU = uint64(min(max(uint32(jsonUint(b["mtu"], netconf.DefaultMTU)), netconf.MinMTU), netconf.MaxMTU))
	}
	if has("remoteTraceTarget") {
		n.RemoteTraceTarget = traceTarget(b["remoteTraceTarget"])
	}
	if has("remoteTraceLevel") {
		n.RemoteTraceLevel = jsonUint(b["remoteTraceLevel"], 0)
	}
	if has("v4AssignMode") {
		switch m := b["v4AssignMode"].(type) {
		case string: // the pre-1.2 form
			n.V4AssignMode = map[string]bool{"zt": m == "zt"}
		case map[string]any:
			n.V4AssignMode = map[string]bool{"zt": jsonBool(m["zt"], false)}
		default:
			n.V4AssignMode = map[string]bool{"zt": false}
		}
	}
	if has("v6AssignMode") {
		modes := map[string]bool{}
		switch m := b["v6AssignMode"].(type) {
		case string: // the pre-1.2 form: "rfc4193,zt"
			on := strings.Split(m, ",")
			for _, k := range []string{"rfc4193", "zt", "6plane"} {
				modes[k] = slices.Contains(on, k)
			}
		case map[string]any: // only the modes named are stored
			for _, k := range []string{"rfc4193", "zt", "6plane"} {
				if v, ok := m[k]; ok {
					modes[k] = jsonBool(v, false)
				}
			}
		default:
			modes = map[string]bool{"rfc4193": false, "zt": false, "6plane": false}
		}
		n.V6AssignMode = modes
	}
	if rts, ok := b["routes"].([]any); ok {
		n.Routes = normalizeRoutes(rts)
	}
	if ps, ok := b["ipAssignmentPools"].([]any); ok {
		n.IPAssignmentPools = normalizePools(ps)
	}
	if rs, ok := b["rules"].([]any); ok {
		n.Rules = normalizeRules(rs)
	}
	if has("authTokens") {
		n.AuthTokens = normalizeAuthTokens(b["authTokens"])
	}
	if cs, ok := b["capabilities"].([]any); ok {
		n.Capabilities = normalizeCapabilities(cs)
	}
	if ts, ok := b["tags"].([]any); ok {
		n.Tags = normalizeTags(ts)
	}
	if d, ok := b["dns"].(map[string]any); ok {
		// Stored as given, like zerotier-one: "domain" (null if absent) and "servers" if an array.
		nd := map[string]any{"domain": d["domain"]}
		if s, ok := d["servers"].([]any); ok {
			nd["servers"] = s
		}
		n.DNS, _ = encodeJSON(nd)
	}
}

// traceTarget keeps a 10-character address, else null.
func traceTarget(v any) *string {
	if s := jsonString(v, ""); len(s) == 10 {
		return &s
	}
	return nil
}

func normalizeRoutes(rts []any) []route {
	out := []route{}
	for _, rv := range rts {
		o, _ := rv.(map[string]any)
		ts, ok := o["target"].(string)
		if !ok {
			continue
		}
		t, ok := parseInet(ts)
		if !ok || !t.prefixBitsValid() {
			continue
		}
		r := route{Target: t.String()}
		if vs, ok := o["via"].(string); ok {
			if v, ok := parseInet(vs); ok && v.IP.Is4() == t.IP.Is4() {
				via := v.IP.String()
				r.Via = &via
			}
		}
		if out = append(out, r); len(out) >= maxArray {
			break
		}
	}
	return out
}

func normalizePools(ps []any) []pool {
	out := []pool{}
	for _, pv := range ps {
		o, _ := pv.(map[string]any)
		s, hasStart := o["ipRangeStart"]
		e, hasEnd := o["ipRangeEnd"]
		if !hasStart || !hasEnd {
			continue
		}
		start, ok1 := parseInet(jsonString(s, ""))
		end, ok2 := parseInet(jsonString(e, ""))
		if !ok1 || !ok2 || start.IP.Is4() != end.IP.Is4() {
			continue
		}
		if out = append(out, pool{IPRangeStart: start.IP.String(), IPRangeEnd: end.IP.String()}); len(out) >= maxArray {
			break
		}
	}
	return out
}

// normalizeAuthTokens keeps the tokens whose expiry is a number ≥ 0 (0: never expires). As in
// zerotier-one an object without any such token becomes null and a non-object [null].
func normalizeAuthTokens(v any) json.RawMessage {
	o, ok := v.(map[string]any)
	if !ok {
		return json.RawMessage(unsetAuthTokens)
	}
	keep := map[string]any{}
	for k, t := range o {
		if isNonNegativeNumber(t) {
			keep[k] = t
		}
	}
	if len(keep) == 0 {
		return json.RawMessage("null")
	}
	b, _ := encodeJSON(keep)
	return b
}

// normalizeCapabilities keys capabilities by id (the last of a duplicate id wins), sorted.
func normalizeCapabilities(cs []any) []capabilitySpec {
	byID := map[uint64]capabilitySpec{}
	for _, cv := range cs {
		o, ok := cv.(map[string]any)
		if !ok {
			continue
		}
		id := jsonUint(o["id"], 0)
		rules, _ := o["rules"].([]any)
		byID[id] = capabilitySpec{ID: id, Default: jsonBool(o["default"], false), Rules: normalizeRules(rules)}
	}
	out := []capabilitySpec{}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		if out = append(out, byID[id]); len(out) >= maxArray {
			break
		}
	}
	return out
}

// normalizeTags keys tag definitions by id, sorted; a missing or null default stays null.
func normalizeTags(ts []any) []tagSpec {
	byID := map[uint64]tagSpec{}
	for _, tv := range ts {
		o, ok := tv.(map[string]any)
		if !ok {
			continue
		}
		t := tagSpec{ID: jsonUint(o["id"], 0)}
		if d := o["default"]; d != nil {
			v := jsonUint(d, 0)
			t.Default = &v
		}
		byID[t.ID] = t
	}
	out := []tagSpec{}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		if out = append(out, byID[id]); len(out) >= maxArray {
			break
		}
	}
	return out
}

// authTokenExpiry returns the expiry of token (0 = never) and whether the network has it.
func (n *network) authTokenExpiry(token string) (uint64, bool) {
	v, err := decodeJSON(n.AuthTokens)
	if err != nil {
		return 0, false
	}
	o, _ := v.(map[string]any)
	t, ok := o[token]
	if !ok {
		return 0, false
	}
	if _, isNumber := number(t); !isNumber {
		return 0, false
	}
	return jsonUint(t, 0), true
}
