package controller

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// member is a member record with zerotier-one's field names and defaults. "identity" appears
// once the member has sent a request; "name" once the API has set one.
type member struct {
	ActiveBridge                 bool        `json:"activeBridge"`
	Address                      string      `json:"address"`
	AuthenticationExpiryTime     int64       `json:"authenticationExpiryTime"`
	Authorized                   bool        `json:"authorized"`
	Capabilities                 []uint64    `json:"capabilities"`
	CreationTime                 int64       `json:"creationTime"`
	ID                           string      `json:"id"`
	Identity                     string      `json:"identity,omitempty"`
	IPAssignments                []string    `json:"ipAssignments"`
	LastAuthorizedCredential     *string     `json:"lastAuthorizedCredential"`
	LastAuthorizedCredentialType *string     `json:"lastAuthorizedCredentialType"`
	LastAuthorizedTime           int64       `json:"lastAuthorizedTime"`
	LastDeauthorizedTime         int64       `json:"lastDeauthorizedTime"`
	Name                         *string     `json:"name,omitempty"`
	NoAutoAssignIPs              bool        `json:"noAutoAssignIps"`
	NWID                         string      `json:"nwid"`
	Objtype                      string      `json:"objtype"`
	RemoteTraceLevel             uint64      `json:"remoteTraceLevel"`
	RemoteTraceTarget            *string     `json:"remoteTraceTarget"`
	Revision                     uint64      `json:"revision"`
	SSOExempt                    bool        `json:"ssoExempt"`
	Tags                         [][2]uint64 `json:"tags"`
	VMajor                       int64       `json:"vMajor"`
	VMinor                       int64       `json:"vMinor"`
	VProto                       int64       `json:"vProto"`
	VRev                         int64       `json:"vRev"`

	extra map[string]json.RawMessage
}

// Ways a member came to be authorized (lastAuthorizedCredentialType).
const (
	authByAPI    = "api"
	authByPublic = "public"
	authByToken  = "token"
)

// newMember returns a member record with zerotier-one's defaults.
func newMember(nwid ztaddr.NetworkID, addr ztaddr.Address, now int64) *member {
	m := &member{}
	m.init(func(string) bool { return false }, now)
	m.ID, m.Address, m.NWID = addr.String(), addr.String(), nwid.String()
	return m
}

// init gives every field that is not present its default, like zerotier-one's initMember.
func (m *member) init(present func(string) bool, now int64) {
	set := func(key string, apply func()) {
		if !present(key) {
			apply()
		}
	}
	set("authorized", func() { m.Authorized = false })
	set("ssoExempt", func() { m.SSOExempt = false })
	set("ipAssignments", func() { m.IPAssignments = []string{} })
	set("activeBridge", func() { m.ActiveBridge = false })
	set("tags", func() { m.Tags = [][2]uint64{} })
	set("capabilities", func() { m.Capabilities = []uint64{} })
	set("creationTime", func() { m.CreationTime = now })
	set("noAutoAssignIps", func() { m.NoAutoAssignIPs = false })
	set("revision", func() { m.Revision = 0 })
	set("lastDeauthorizedTime", func() { m.LastDeauthorizedTime = 0 })
	set("lastAuthorizedTime", func() { m.LastAuthorizedTime = 0 })
	set("lastAuthorizedCredentialType", func() { m.LastAuthorizedCredentialType = nil })
	set("lastAuthorizedCredential", func() { m.LastAuthorizedCredential = nil })
	set("authenticationExpiryTime", func() { m.AuthenticationExpiryTime = 0 })
	set("vMajor", func() { m.VMajor = -1 })
	set("vMinor", func() { m.VMinor = -1 })
	set("vRev", func() { m.VRev = -1 })
	set("vProto", func() { m.VProto = -1 })
	set("remoteTraceTarget", func() { m.RemoteTraceTarget = nil })
	m.Objtype = "member"
	// Reset every time, as zerotier-one does (it tests for a misspelt "removeTraceLevel").
	m.RemoteTraceLevel = 0
}

type memberFields member // member without its JSON methods

// MarshalJSON writes the record as zerotier-one does.
func (m *member) MarshalJSON() ([]byte, error) {
	return marshalRecord((*memberFields)(m), m.extra)
}

// UnmarshalJSON reads a stored record; absent fields get their defaults.
func (m *member) UnmarshalJSON(b []byte) error {
	*m = member{}
	present, extra, err := unmarshalRecord(b, (*memberFields)(m))
	if err != nil {
		return err
	}
	rtl := m.RemoteTraceLevel
	m.init(func(k string) bool { return present[k] }, 0)
	m.RemoteTraceLevel = rtl
	m.extra = extra
	return nil
}

// clone returns a deep copy.
func (m *member) clone() *member {
	b, err := m.MarshalJSON()
	if err != nil {
		panic("controller: member record does not encode: " + err.Error())
	}
	c := &member{}
	if err := c.UnmarshalJSON(b); err != nil {
		panic("controller: member record does not decode: " + err.Error())
	}
	return c
}

// setAuthorized records a change of authorization at time now, by credential kind how (with
// credential cred, for tokens) when authorizing.
func (m *member) setAuthorized(auth bool, how string, cred *string, now int64) {
	if auth == m.Authorized {
		return
	}
	m.Authorized = auth
	if !auth {
		m.LastDeauthorizedTime = now
		return
	}
	m.LastAuthorizedTime = now
	m.LastAuthorizedCredentialType, m.LastAuthorizedCredential = &how, cred
}

// update applies the fields of an API POST body the way zerotier-one does. It fails only for
// an "ipAssignments" entry that is not a string, which zerotier-one answers with an error too.
func (m *member) update(b map[string]any, now int64) error {
	m.init(func(string) bool { return true }, now)
	has := func(k string) bool { _, ok := b[k]; return ok }
	if has("activeBridge") {
		m.ActiveBridge = jsonBool(b["activeBridge"], false)
	}
	if has("noAutoAssignIps") {
		m.NoAutoAssignIPs = jsonBool(b["noAutoAssignIps"], false)
	}
	if has("authenticationExpiryTime") {
		m.AuthenticationExpiryTime = int64(jsonUint(b["authenticationExpiryTime"], 0))
	}
	if has("name") {
		name := jsonString(b["name"], "")
		m.Name = &name
	}
	if has("remoteTraceTarget") {
		m.RemoteTraceTarget = traceTarget(b["remoteTraceTarget"])
	}
	if has("remoteTraceLevel") {
		m.RemoteTraceLevel = jsonUint(b["remoteTraceLevel"], 0)
	}
	if has("authorized") {
		m.setAuthorized(jsonBool(b["authorized"], false), authByAPI, nil, now)
	}
	if ips, ok := b["ipAssignments"].([]any); ok {
		out := []string{}
		for i, v := range ips {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("ipAssignments[%d] is not a string", i)
			}
			if a, ok := parseInet(s); ok {
				out = append(out, a.IP.String())
			}
			if len(out) >= maxArray {
				break
			}
		}
		m.IPAssignments = out
	}
	if ts, ok := b["tags"].([]any); ok {
		byID := map[uint64]uint64{}
		for _, tv := range ts {
			if t, ok := tv.([]any); ok && len(t) == 2 {
				byID[jsonUint(t[0], 0)&0xffffffff] = jsonUint(t[1], 0) & 0xffffffff
			}
		}
		m.Tags = [][2]uint64{}
		for _, id := range slices.Sorted(maps.Keys(byID)) {
			if m.Tags = append(m.Tags, [2]uint64{id, byID[id]}); len(m.Tags) >= maxArray {
				break
			}
		}
	}
	if cs, ok := b["capabilities"].([]any); ok {
		caps := []uint64{}
		for _, c := range cs {
			if caps = append(caps, jsonUint(c, 0)); len(caps) >= maxArray {
				break
			}
		}
		slices.Sort(caps)
		m.Capabilities = slices.Compact(caps)
	}
	return nil
}
