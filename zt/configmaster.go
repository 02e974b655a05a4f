package zt

import (
	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// ConfigMaster is a network controller plugged into a node: the node hands it every
// NETWORK_CONFIG_REQUEST addressed to this node, after authenticating the packet.
type ConfigMaster interface {
	// Request answers one member's request, later and from any goroutine, through the
	// node's ConfigSender. requestID is the on-wire packet ID the answer must quote;
	// metadata is the request's metadata dictionary.
	Request(nwid ztaddr.NetworkID, requestID uint64, from *identity.Identity, metadata *netconf.Dictionary)
}

// ConfigSender is what a node offers its ConfigMaster for answering members.
type ConfigSender interface {
	// SendConfig signs nc with the node's identity, splits it into chunks and sends them to
	// the member: as OK(NETWORK_CONFIG_REQUEST) quoting requestID, or, when requestID is 0,
	// as an unsolicited NETWORK_CONFIG push.
	SendConfig(to ztaddr.Address, requestID uint64, nc *netconf.NetworkConfig) error
	// SendError answers a request with ERROR(code, nwid): wire.ErrorObjectNotFound,
	// wire.ErrorNetworkAccessDenied, wire.ErrorNetworkAuthenticationRequired.
	SendError(to ztaddr.Address, nwid ztaddr.NetworkID, requestID uint64, code wire.ErrorCode) error
	// SendRevocation pushes a signed revocation to a member in NETWORK_CREDENTIALS.
	SendRevocation(to ztaddr.Address, rev *netconf.Revocation) error
}
