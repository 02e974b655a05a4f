package zt

import (
	"fmt"
	"math/rand/v2"

	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/wire"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// The link between a node and the controller attached to it (SetConfigMaster): requests for
// our networks go to the ConfigMaster, which answers through the node (ConfigSender). Our
// own requests for our own networks take the same way without touching the wire.

var _ ConfigSender = (*Node)(nil)

// onConfigRequest hands a member's NETWORK_CONFIG_REQUEST to our ConfigMaster; without one
// (or for a network that is not ours) it answers ERROR(UNSUPPORTED_OPERATION) as
// zerotier-one does.
func (n *Node) onConfigRequest(in *inbound) {
	q, err := wire.ParseConfigRequest(in.pkt.Payload())
	if err != nil {
		n.stats.drop(dropMalformed)
		return
	}
	m := n.configMaster()
	if m == nil || q.NetworkID.Controller() != n.addr {
		n.reply(in, wire.VerbError, wire.NewNetworkError(wire.VerbNetworkConfigRequest, in.pkt.ID(),
			wire.ErrorUnsupportedOperation, q.NetworkID), 0)
		return
	}
	m.Request(q.NetworkID, in.pkt.ID(), in.peer.id, q.MetadataDictionary())
}

// SendConfig signs a member's config, cuts it into chunks and sends them: as answers to
// requestID, or as an unsolicited NETWORK_CONFIG push when requestID is 0.
func (n *Node) SendConfig(to ztaddr.Address, requestID uint64, nc *netconf.NetworkConfig) error {
	if nc.NetworkID.Controller() != n.addr {
		return fmt.Errorf("send config for %s: not our network", nc.NetworkID)
	}
	dict := nc.Dictionary().Bytes()
	if to == n.addr {
		nw := n.Network(nc.NetworkID)
		if nw == nil {
			return fmt.Errorf("send config for %s to ourselves: not joined", nc.NetworkID)
		}
		return nw.applyConfig(dict, false)
	}
	chunks, err := wire.SplitConfig(dict, nc.NetworkID, rand.Uint64()|1, n.id)
	if err != nil {
		return fmt.Errorf("send config for %s to %s: %w", nc.NetworkID, to, err)
	}
	for _, c := range chunks {
		if requestID != 0 {
			n.sendMsg(to, wire.VerbOK, &okMessage{wire.VerbNetworkConfigRequest, requestID, c}, optCompress)
		} else {
			n.sendMsg(to, wire.VerbNetworkConfig, c, optCompress)
		}
	}
	return nil
}

// SendError answers a member's request with an error.
func (n *Node) SendError(to ztaddr.Address, nwid ztaddr.NetworkID, requestID uint64, code wire.ErrorCode) error {
	if to == n.addr {
		nw := n.Network(nwid)
		if nw == nil {
			return fmt.Errorf("send error for %s to ourselves: not joined", nwid)
		}
		s, ok := map[wire.ErrorCode]Status{wire.ErrorObjectNotFound: StatusNotFound,
			wire.ErrorNetworkAccessDenied:           StatusAccessDenied,
			wire.ErrorNetworkAuthenticationRequired: StatusAuthenticationRequired}[code]
		if !ok {
			return fmt.Errorf("send error %#x: not a config request error", code)
		}
		nw.setFailure(s)
		return nil
	}
	n.sendMsg(to, wire.VerbError, wire.NewNetworkError(wire.VerbNetworkConfigRequest, requestID, code, nwid), 0)
	return nil
}

// SendRevocation pushes a revocation to a member.
func (n *Node) SendRevocation(to ztaddr.Address, rev *netconf.Revocation) error {
	if to == n.addr {
		if nw := n.Network(rev.NetworkID); nw != nil {
			nw.addRevocation(rev)
		}
		return nil
	}
	n.sendMsg(to, wire.VerbNetworkCredentials, &wire.NetworkCredentials{Revocations: []*netconf.Revocation{rev}}, optCompress)
	return nil
}
