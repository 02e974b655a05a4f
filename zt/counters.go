package zt

import "sync/atomic"

// drop is why a packet or frame was discarded.
type drop int

// Drop reasons. Node-level ones concern packets; network-level ones frames.
const (
	dropMalformed    drop = iota // too short, bad fragment, undecodable payload
	dropBadMAC                   // failed authentication
	dropFromSelf                 // our own address as source
	dropUnknownPeer              // parked for WHOIS and never resolved
	dropRelayRefused             // not for us and we do not relay it
	dropNoRoute                  // no path to the destination and no root to relay through
	dropUnsolicited              // an OK for nothing we sent, or a root-only verb from a leaf
	dropRateLimited              // over a per-peer or per-path limit
	dropIdentity                 // invalid or colliding identity
	dropSendFailed               // the socket refused the datagram
	dropNotMember                // a frame from a peer without a valid certificate of membership
	dropRulesIn                  // inbound frame dropped by the network's rules
	dropRulesOut                 // outbound frame dropped by the network's rules
	dropNoConfig                 // a frame for a network without a config yet
	dropNoNetwork                // a frame for a network we have not joined
	dropBadFrame                 // wrong MACs or ethertype, or multicast disabled
	dropNoReceiver               // nobody attached to the port
	dropNoMembers                // a multicast with nobody to send it to
	dropBadConfig                // a config chunk, COM or revocation that failed its checks
	numDrops
)

var dropNames = [numDrops]string{
	dropMalformed: "malformed", dropBadMAC: "bad-mac", dropFromSelf: "from-self",
	dropUnknownPeer: "unknown-peer", dropRelayRefused: "relay-refused", dropNoRoute: "no-route",
	dropUnsolicited: "unsolicited", dropRateLimited: "rate-limited", dropIdentity: "identity",
	dropSendFailed: "send-failed", dropNotMember: "not-member", dropRulesIn: "rules-in",
	dropRulesOut: "rules-out", dropNoConfig: "no-config", dropNoNetwork: "no-network",
	dropBadFrame: "bad-frame", dropNoReceiver: "no-receiver", dropNoMembers: "no-members",
	dropBadConfig: "bad-credential",
}

// counters are lock-free traffic counters.
type counters struct {
	packetsIn, packetsOut, bytesIn, bytesOut atomic.Uint64
	relayed                                  atomic.Uint64
	drops                                    [numDrops]atomic.Uint64
}

func (c *counters) drop(r drop) { c.drops[r].Add(1) }

func (c *counters) in(n int)  { c.packetsIn.Add(1); c.bytesIn.Add(uint64(n)) }
func (c *counters) out(n int) { c.packetsOut.Add(1); c.bytesOut.Add(uint64(n)) }

// Counters is a snapshot of traffic counters. For a node, packets are UDP datagrams; for a
// network, Ethernet frames.
type Counters struct {
	PacketsIn, PacketsOut uint64
	BytesIn, BytesOut     uint64
	Relayed               uint64            // packets forwarded for others (roots)
	Drops                 map[string]uint64 // by reason, only non-zero ones
}

func (c *counters) snapshot() Counters {
	s := Counters{PacketsIn: c.packetsIn.Load(), PacketsOut: c.packetsOut.Load(), BytesIn: c.bytesIn.Load(),
		BytesOut: c.bytesOut.Load(), Relayed: c.relayed.Load(), Drops: map[string]uint64{}}
	for i := range c.drops {
		if v := c.drops[i].Load(); v != 0 {
			s.Drops[dropNames[i]] = v
		}
	}
	return s
}
