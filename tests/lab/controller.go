package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"
)

// Controller is a client for the network controller HTTP API of zerotier-one (and of ztnc-run
// controller, which serves the same subset): /controller/network[/<nwid>[/member[/<addr>]]]
// with the X-ZT1-Auth token.
type Controller struct {
	// Address is the controller node's address; the networks it serves have IDs that start
	// with it.
	Address string
	URL     string // e.g. http://127.0.0.1:9993
	Token   string
	Client  *http.Client
}

// Network is a controller network object (the fields the lab uses). Fields are sent as they
// are: start from NewNetwork for zerotier-one's defaults.
type Network struct {
	ID                string       `json:"id,omitempty"`
	Name              string       `json:"name"`
	Private           bool         `json:"private"`
	EnableBroadcast   bool         `json:"enableBroadcast"`
	MTU               int          `json:"mtu,omitempty"`
	MulticastLimit    int          `json:"multicastLimit,omitempty"`
	V4AssignMode      V4AssignMode `json:"v4AssignMode"`
	V6AssignMode      V6AssignMode `json:"v6AssignMode"`
	Routes            []Route      `json:"routes"`
	IPAssignmentPools []IPPool     `json:"ipAssignmentPools"`
	DNS               *DNS         `json:"dns,omitempty"`
	Revision          int          `json:"revision,omitempty"`
}

// DNS is a network's DNS settings (ZeroTier 1.6+): a search domain and its servers.
type DNS struct {
	Domain  string   `json:"domain"`
	Servers []string `json:"servers"`
}

// UnmarshalJSON accepts the empty array that zerotier-one (and our controller) answer for a
// network without DNS settings, as well as the object.
func (d *DNS) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "[]" {
		*d = DNS{}
		return nil
	}
	type plain DNS
	return json.Unmarshal(b, (*plain)(d))
}

// V4AssignMode selects IPv4 auto-assignment from the pools.
type V4AssignMode struct {
	ZT bool `json:"zt"`
}

// V6AssignMode selects IPv6 auto-assignment: from pools (ZT), an RFC 4193 address derived from
// network ID and node address (/88), or a 6PLANE address (/40).
type V6AssignMode struct {
	ZT       bool `json:"zt"`
	RFC4193  bool `json:"rfc4193"`
	SixPlane bool `json:"6plane"`
}

// Route is a managed route; Via nil means on the network itself.
type Route struct {
	Target string  `json:"target"`
	Via    *string `json:"via"`
}

// IPPool is an address range the controller assigns from.
type IPPool struct {
	Start string `json:"ipRangeStart"`
	End   string `json:"ipRangeEnd"`
}

// NetworkMember is a controller member object (the fields the lab uses).
type NetworkMember struct {
	Address         string   `json:"address"`
	Network         string   `json:"nwid"`
	Authorized      bool     `json:"authorized"`
	IPAssignments   []string `json:"ipAssignments"`
	NoAutoAssignIPs bool     `json:"noAutoAssignIps"`
	Identity        string   `json:"identity"`
	Revision        int      `json:"revision"`
}

// NewNetwork returns a private network with broadcast on that assigns IPv4 addresses from
// subnet (all but its first and last address) and routes subnet on the network. Use a
// documentation /24 that no lab host is in.
func NewNetwork(name string, subnet netip.Prefix) Network {
	if !subnet.Addr().Is4() || subnet.Bits() > 30 {
		panic(fmt.Sprintf("lab.NewNetwork: %s is not an IPv4 subnet with room for hosts", subnet))
	}
	subnet = subnet.Masked()
	b := subnet.Addr().As4()
	base := binary.BigEndian.Uint32(b[:])
	first, last := ipv4(base+1), ipv4(base+1<<(32-subnet.Bits())-2)
	return Network{
		Name:              name,
		Private:           true,
		EnableBroadcast:   true,
		V4AssignMode:      V4AssignMode{ZT: true},
		Routes:            []Route{{Target: subnet.String()}},
		IPAssignmentPools: []IPPool{{Start: first.String(), End: last.String()}},
	}
}

func ipv4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func (c *Controller) call(ctx context.Context, method, path string, body, out any) error {
	return callJSON(ctx, c.Client, c.Token, method, c.URL+path, body, out)
}

// Ready waits until GET /controller reports the database ready.
func (c *Controller) Ready(timeout time.Duration) error {
	return poll(timeout, func() error {
		var st struct {
			Controller    bool `json:"controller"`
			DatabaseReady bool `json:"databaseReady"`
		}
		if err := c.call(context.Background(), "GET", "/controller", nil, &st); err != nil {
			return err
		}
		if !st.Controller || !st.DatabaseReady {
			return errors.New("controller database not ready")
		}
		return nil
	})
}

// CreateNetwork creates a network with a random free ID under the controller's address.
func (c *Controller) CreateNetwork(ctx context.Context, n Network) (Network, error) {
	var got Network
	if err := c.call(ctx, "POST", "/controller/network/"+c.Address+"______", n, &got); err != nil {
		return got, fmt.Errorf("create network: %w", err)
	}
	if len(got.ID) != 16 {
		return got, fmt.Errorf("create network: answer has no network id")
	}
	return got, nil
}

// Network reads network nwid.
func (c *Controller) Network(ctx context.Context, nwid string) (Network, error) {
	var got Network
	return got, c.call(ctx, "GET", "/controller/network/"+nwid, nil, &got)
}

// Networks lists the network IDs.
func (c *Controller) Networks(ctx context.Context) ([]string, error) {
	var ids []string
	return ids, c.call(ctx, "GET", "/controller/network", nil, &ids)
}

// Members lists the members of nwid: address → revision.
func (c *Controller) Members(ctx context.Context, nwid string) (map[string]int, error) {
	var m map[string]int
	return m, c.call(ctx, "GET", "/controller/network/"+nwid+"/member", nil, &m)
}

// Member reads a member.
func (c *Controller) Member(ctx context.Context, nwid, addr string) (NetworkMember, error) {
	var m NetworkMember
	return m, c.call(ctx, "GET", "/controller/network/"+nwid+"/member/"+addr, nil, &m)
}

// UpdateMember creates or updates a member with exactly the given fields (authorized,
// ipAssignments, noAutoAssignIps, name, ...). The member need not have contacted the
// controller yet.
func (c *Controller) UpdateMember(ctx context.Context, nwid, addr string, fields map[string]any) (NetworkMember, error) {
	var m NetworkMember
	if err := c.call(ctx, "POST", "/controller/network/"+nwid+"/member/"+addr, fields, &m); err != nil {
		return m, fmt.Errorf("member %s of %s: %w", addr, nwid, err)
	}
	return m, nil
}

// Authorize authorizes a member; with ips, they become its only assigned addresses.
func (c *Controller) Authorize(ctx context.Context, nwid, addr string, ips ...netip.Addr) error {
	fields := map[string]any{"authorized": true}
	if len(ips) > 0 {
		s := make([]string, len(ips))
		for i, ip := range ips {
			s[i] = ip.String()
		}
		fields["ipAssignments"] = s
	}
	_, err := c.UpdateMember(ctx, nwid, addr, fields)
	return err
}

// Deauthorize takes a member's authorization away.
func (c *Controller) Deauthorize(ctx context.Context, nwid, addr string) error {
	_, err := c.UpdateMember(ctx, nwid, addr, map[string]any{"authorized": false})
	return err
}
