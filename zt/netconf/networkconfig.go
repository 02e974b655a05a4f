package netconf

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Version is the netconf format version 1.14 writes; configs older than MinVersion (the legacy
// format) are not supported.
const (
	Version    = 7
	MinVersion = 6
)

// Network types.
const (
	TypePrivate = 0
	TypePublic  = 1
)

// Network config flags (key "f").
const (
	FlagEnableBroadcast          = 0x02
	FlagIPv6NDPEmulation         = 0x04
	FlagRulesResultOfUnsupported = 0x08
	FlagDisableCompression       = 0x10
)

// Specialist role bits, above the 40-bit address of each "S" entry.
const (
	SpecialistActiveBridge        = 0x0000020000000000
	SpecialistAnchor              = 0x0000040000000000
	SpecialistMulticastReplicator = 0x0000080000000000
	specialistAddressMask         = 0xffffffffff
	DefaultMTU                    = 2800
	MinMTU, MaxMTU                = 1280, 10000
	DefaultCredentialTimeMaxDelta = 30 * 60 * 1000
	MaxNameLength                 = 127
	MaxRoutes                     = 128
	MaxStaticIPs                  = 32
	MaxSpecialists                = 256
	MaxRules                      = 1024
	MaxCapabilities               = 128
	MaxTags                       = 128
	MaxCOOs                       = 4
	MaxDNSServers                 = 4
	dnsDomainLength               = 128
)

// Route is one managed route: Target's port field carries its prefix length; Via is nil for
// on-link routes.
type Route struct {
	Target ztaddr.InetAddress
	Via    ztaddr.InetAddress
	Flags  uint16
	Metric uint16
}

// NewRoute builds a route to p, via gw if valid.
func NewRoute(p netip.Prefix, gw netip.Addr) Route {
	r := Route{Target: ztaddr.InetAddressOfPrefix(p)}
	if gw.IsValid() {
		r.Via = ztaddr.InetAddressOf(netip.AddrPortFrom(gw, 0))
	}
	return r
}

// DNS is the network's DNS configuration: a search domain and up to 4 servers (nil addresses
// mark unused slots).
type DNS struct {
	Domain  string
	Servers [MaxDNSServers]ztaddr.InetAddress
}

// NetworkConfig is a network's configuration for one member, as the controller sends it in a
// Dictionary. Field comments give the dictionary keys.
type NetworkConfig struct {
	Version                uint64               // v
	NetworkID              ztaddr.NetworkID     // nwid
	Timestamp              int64                // ts: controller clock, ms
	CredentialTimeMaxDelta int64                // ctmd: how far COM timestamps may differ
	Revision               uint64               // r
	IssuedTo               ztaddr.Address       // id: the member
	RemoteTraceTarget      ztaddr.Address       // tt
	RemoteTraceLevel       uint64               // tl
	Flags                  uint64               // f: Flag*
	MulticastLimit         uint64               // ml: max recipients per multicast (0 = none)
	Type                   uint64               // t: TypePrivate or TypePublic
	Name                   string               // n
	MTU                    int                  // mtu, clamped to [MinMTU, MaxMTU]
	COM                    *COM                 // C
	Capabilities           []*Capability        // CAP
	Tags                   []*Tag               // TAG
	COOs                   []*COO               // COO
	Specialists            []uint64             // S: address | Specialist* bits
	Routes                 []Route              // RT
	StaticIPs              []ztaddr.InetAddress // I: assigned addresses, port field = prefix bits
	Rules                  []Rule               // R
	DNS                    DNS                  // DNS

	SSOVersion               uint64 // ssov
	SSOEnabled               bool   // ssoe
	AuthenticationURL        string // aurl
	AuthenticationExpiryTime int64  // aexpt
	IssuerURL                string // iurl
	CentralAuthURL           string // ssoce
	SSONonce                 string // sson
	SSOState                 string // ssos
	SSOClientID              string // ssocid
	SSOProvider              string // ssop

	// Extra holds entries with keys this package does not know, kept in order so that they
	// survive a re-encode (appended after the known keys).
	Extra []Entry
}

// ErrBadConfig is returned for a dictionary that is not a usable network config.
var ErrBadConfig = errors.New("bad network config")

var knownKeys = map[string]bool{}

func init() {
	for _, k := range []string{"v", "nwid", "ts", "ctmd", "r", "id", "tt", "tl", "f", "ml", "t", "n", "mtu",
		"C", "CAP", "TAG", "COO", "S", "RT", "I", "R", "DNS", "ssov", "ssoe", "aurl", "aexpt", "iurl",
		"ssoce", "sson", "ssos", "ssocid", "ssop"} {
		knownKeys[k] = true
	}
}

// IsPrivate reports whether members need certificates of membership.
func (c *NetworkConfig) IsPrivate() bool { return c.Type != TypePublic }

// BroadcastEnabled reports whether Ethernet broadcast (ff:ff:ff:ff:ff:ff, ADI 0) is carried.
func (c *NetworkConfig) BroadcastEnabled() bool { return c.Flags&FlagEnableBroadcast != 0 }

// AssignedPrefixes returns the member's managed addresses with their prefix lengths.
func (c *NetworkConfig) AssignedPrefixes() []netip.Prefix {
	var ps []netip.Prefix
	for _, a := range c.StaticIPs {
		if p, ok := a.Prefix(); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// SpecialistsWith returns the addresses of specialists having role (a Specialist* bit).
func (c *NetworkConfig) SpecialistsWith(role uint64) []ztaddr.Address {
	var as []ztaddr.Address
	for _, s := range c.Specialists {
		if s&role != 0 {
			as = append(as, ztaddr.Address(s&specialistAddressMask))
		}
	}
	return as
}

// ParseNetworkConfig decodes a network config dictionary the way zerotier-one 1.14 does.
func ParseNetworkConfig(d *Dictionary) (*NetworkConfig, error) {
	c := &NetworkConfig{
		Version:                d.Uint("v", 0),
		NetworkID:              ztaddr.NetworkID(d.Uint("nwid", 0)),
		Timestamp:              int64(d.Uint("ts", 0)),
		CredentialTimeMaxDelta: int64(d.Uint("ctmd", 0)),
		Revision:               d.Uint("r", 0),
		IssuedTo:               ztaddr.Address(d.Uint("id", 0) & specialistAddressMask),
		RemoteTraceTarget:      ztaddr.Address(d.Uint("tt", 0) & specialistAddressMask),
		RemoteTraceLevel:       d.Uint("tl", 0),
		Flags:                  d.Uint("f", 0),
		MulticastLimit:         d.Uint("ml", 0),
		Type:                   d.Uint("t", TypePrivate),
		Name:                   d.String("n"),
		MTU:                    int(min(d.Uint("mtu", DefaultMTU), MaxMTU)),
		SSOVersion:             d.Uint("ssov", 0),
		SSOEnabled:             d.Bool("ssoe", false),
	}
	if c.NetworkID == 0 || c.IssuedTo == 0 {
		return nil, fmt.Errorf("%w: missing network ID or member address", ErrBadConfig)
	}
	if c.Version < MinVersion {
		return nil, fmt.Errorf("%w: legacy format version %d", ErrBadConfig, c.Version)
	}
	if len(c.Name) > MaxNameLength {
		c.Name = c.Name[:MaxNameLength]
	}
	c.MTU = max(c.MTU, MinMTU)
	var err error
	if v, ok := d.Get("C"); ok {
		if c.COM, _, err = ParseCOM(v); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
		}
	}
	// Like zerotier-one, keep the capabilities and tags decoded before a bad one.
	if v, ok := d.Get("CAP"); ok {
		for len(v) > 0 && len(c.Capabilities) < MaxCapabilities {
			cp, n, err := ParseCapability(v)
			if err != nil {
				break
			}
			c.Capabilities, v = append(c.Capabilities, cp), v[n:]
		}
	}
	if v, ok := d.Get("TAG"); ok {
		for len(v) > 0 && len(c.Tags) < MaxTags {
			t, n, err := ParseTag(v)
			if err != nil {
				break
			}
			c.Tags, v = append(c.Tags, t), v[n:]
		}
	}
	if v, ok := d.Get("COO"); ok {
		for len(v) > 0 {
			coo, n, err := ParseCOO(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
			}
			if len(c.COOs) < MaxCOOs {
				c.COOs = append(c.COOs, coo)
			}
			v = v[n:]
		}
	}
	if v, ok := d.Get("S"); ok {
		r := bin.Reader{B: v}
		for r.Len() >= 8 {
			s := r.U64()
			if len(c.Specialists) < MaxSpecialists {
				c.Specialists = append(c.Specialists, s)
			}
		}
	}
	if v, ok := d.Get("RT"); ok {
		r := bin.Reader{B: v}
		for r.Len() > 0 && len(c.Routes) < MaxRoutes {
			c.Routes = append(c.Routes, Route{Target: r.InetAddress(), Via: r.InetAddress(), Flags: r.U16(), Metric: r.U16()})
		}
		if r.Err != nil {
			return nil, fmt.Errorf("%w: routes: %v", ErrBadConfig, r.Err)
		}
	}
	if v, ok := d.Get("I"); ok {
		r := bin.Reader{B: v}
		for r.Len() > 0 && len(c.StaticIPs) < MaxStaticIPs {
			c.StaticIPs = append(c.StaticIPs, r.InetAddress())
		}
		if r.Err != nil {
			return nil, fmt.Errorf("%w: addresses: %v", ErrBadConfig, r.Err)
		}
	}
	if v, ok := d.Get("R"); ok {
		if c.Rules, err = ParseRules(v, MaxRules); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
		}
	}
	if v, ok := d.Get("DNS"); ok {
		r := bin.Reader{B: v}
		dom := r.Take(dnsDomainLength)
		if i := bytes.IndexByte(dom, 0); i >= 0 {
			dom = dom[:i]
		}
		c.DNS.Domain = string(dom[:min(len(dom), dnsDomainLength-1)])
		for i := range c.DNS.Servers {
			c.DNS.Servers[i] = r.InetAddress()
		}
		if r.Err != nil {
			return nil, fmt.Errorf("%w: DNS: %v", ErrBadConfig, r.Err)
		}
	}
	if c.SSOEnabled {
		c.AuthenticationURL = d.String("aurl")
		switch c.SSOVersion {
		case 0:
			c.AuthenticationExpiryTime = d.Int("aexpt", 0)
		case 1:
			c.IssuerURL, c.CentralAuthURL = d.String("iurl"), d.String("ssoce")
			c.SSONonce, c.SSOState = d.String("sson"), d.String("ssos")
			c.SSOClientID, c.SSOProvider = d.String("ssocid"), d.String("ssop")
			if c.SSOProvider == "" {
				c.SSOProvider = "default"
			}
		}
	}
	for _, e := range d.Entries {
		if !knownKeys[e.Key] {
			c.Extra = append(c.Extra, e)
		}
	}
	return c, nil
}

// Dictionary encodes the config the way a 1.14 controller does (same keys, order and
// formatting), followed by any Extra entries.
func (c *NetworkConfig) Dictionary() *Dictionary {
	d := &Dictionary{}
	d.AddUint("v", c.Version)
	d.AddUint("nwid", uint64(c.NetworkID))
	d.AddUint("ts", uint64(c.Timestamp))
	d.AddUint("ctmd", uint64(c.CredentialTimeMaxDelta))
	d.AddUint("r", c.Revision)
	d.AddAddress("id", c.IssuedTo)
	d.AddAddress("tt", c.RemoteTraceTarget)
	d.AddUint("tl", c.RemoteTraceLevel)
	d.AddUint("f", c.Flags)
	d.AddUint("ml", c.MulticastLimit)
	d.AddUint("t", c.Type)
	d.AddString("n", c.Name)
	d.AddUint("mtu", uint64(c.MTU))
	if c.COM != nil {
		d.Add("C", c.COM.Append(nil))
	}
	var b []byte
	addBlob := func(key string) {
		if len(b) > 0 {
			d.Add(key, b)
		}
		b = nil
	}
	for _, cp := range c.Capabilities {
		b = cp.Append(b)
	}
	addBlob("CAP")
	for _, t := range c.Tags {
		b = t.Append(b)
	}
	addBlob("TAG")
	for _, coo := range c.COOs {
		b = coo.Append(b)
	}
	addBlob("COO")
	for _, s := range c.Specialists {
		b = bin.AppendU64(b, s)
	}
	addBlob("S")
	for _, r := range c.Routes {
		b = r.Target.Append(b)
		b = r.Via.Append(b)
		b = bin.AppendU16(b, r.Flags)
		b = bin.AppendU16(b, r.Metric)
	}
	addBlob("RT")
	for _, a := range c.StaticIPs {
		b = a.Append(b)
	}
	addBlob("I")
	b = AppendRules(b, c.Rules)
	addBlob("R")
	var dom [dnsDomainLength]byte
	copy(dom[:dnsDomainLength-1], c.DNS.Domain)
	b = dom[:]
	for _, s := range c.DNS.Servers {
		b = s.Append(b)
	}
	addBlob("DNS")
	switch c.SSOVersion {
	case 0:
		d.AddUint("ssov", c.SSOVersion)
		d.AddBool("ssoe", c.SSOEnabled)
		if c.SSOEnabled {
			if c.AuthenticationURL != "" {
				d.AddString("aurl", c.AuthenticationURL)
			}
			d.AddInt("aexpt", c.AuthenticationExpiryTime)
		}
	case 1:
		d.AddUint("ssov", c.SSOVersion)
		d.AddBool("ssoe", c.SSOEnabled)
		d.AddString("iurl", c.IssuerURL)
		d.AddString("ssoce", c.CentralAuthURL)
		d.AddString("sson", c.SSONonce)
		d.AddString("ssos", c.SSOState)
		d.AddString("ssocid", c.SSOClientID)
		d.AddString("ssop", c.SSOProvider)
	}
	d.Entries = append(d.Entries, c.Extra...)
	return d
}

// RequestMetadata is the metadata dictionary zerotier-one 1.14.1 sends with a
// NETWORK_CONFIG_REQUEST. osArch is e.g. "linux/x86_64"; authToken, if not empty, is sent as
// "a=token:<authToken>" to self-authorize on networks that define such tokens.
func RequestMetadata(protocolVersion uint64, major, minor, revision uint64, osArch, authToken string) *Dictionary {
	d := &Dictionary{}
	d.AddUint("v", Version)
	d.AddUint("vend", 1)
	d.AddUint("pv", protocolVersion)
	d.AddUint("majv", major)
	d.AddUint("minv", minor)
	d.AddUint("revv", revision)
	d.AddUint("mr", MaxRules)
	d.AddUint("mc", MaxCapabilities)
	d.AddUint("mcr", MaxCapabilityRules)
	d.AddUint("mt", MaxTags)
	d.AddUint("f", 0)
	d.AddUint("revr", 1)
	d.AddString("o", osArch)
	if authToken != "" {
		d.AddString("a", "token:"+authToken)
	}
	return d
}
