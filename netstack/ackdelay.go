package netstack

import (
	"encoding/binary"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Delayed ACKs, done by the link.
//
// gVisor's TCP acknowledges every batch of received data at once with a pure ACK. Linux
// delays such ACKs (RFC 1122 4.2.3.2) so that the response a program is about to send
// carries them: a request/response exchange then costs two packets, not four. Over ZeroTier
// every packet is an armored UDP datagram with its system call on each side, so the link
// holds a pure ACK back for up to ackDelay and drops it if the connection sends anything else
// meanwhile — which acknowledges as much or more. ACKs that matter at once go at once: those
// that acknowledge two full segments or more (bulk transfers keep their ACK clock; with GRO
// one ACK covers a burst), duplicate ACKs and window updates (no new data acknowledged),
// ACKs carrying SACK blocks, the first of a connection, and anything with flags besides ACK.
// A pure ACK older than what the connection already sent is dropped: it would tell the peer
// nothing.

// ackDelay is how long a pure ACK waits for a segment of the connection to ride on (up to
// twice that when the connection's ACK was released and held again meanwhile). Linux waits up
// to 40 ms; a program that answers at all answers well within this.
const ackDelay = time.Millisecond

// maxAckFlows bounds the connections remembered; beyond it those without a held ACK are
// forgotten (their next ACK goes at once).
const maxAckFlows = 4096

// flowKey identifies a TCP connection by its addresses and ports as sent.
type flowKey struct {
	addrs [32]byte // source and destination, IPv4 in the first 4 bytes of each half
	ports uint32
}

type ackFlow struct {
	lastAck uint32 // acknowledgment number of the last segment sent
	acked   bool   // lastAck is one: a segment with the ACK flag was sent (a SYN has none)
	holding bool   // held is a pure ACK frame waiting until due
	held    []byte
	due     time.Time
}

type ackDelayer struct {
	send  func(frames [][]byte) // transmits frames that were held, together
	stats *counters

	mu      sync.Mutex
	flows   map[flowKey]*ackFlow
	holding []*ackFlow // the flows with a held ACK, oldest first
	timer   *time.Timer
	armed   bool
	mss     int
}

func newAckDelayer(send func([][]byte), stats *counters, mtu int) *ackDelayer {
	d := &ackDelayer{send: send, stats: stats, flows: map[flowKey]*ackFlow{}, mss: mtu - header.IPv6MinimumSize - header.TCPMinimumSize}
	d.timer = time.AfterFunc(time.Hour, d.expire)
	d.timer.Stop()
	return d
}

// tcpInfo is what the delayer needs of an outbound frame.
type tcpInfo struct {
	key     flowKey
	ack     uint32
	acks    bool // the ACK flag is set: ack is an acknowledgment number
	syn     bool // SYN: a connection (re)starts on these addresses and ports
	pureAck bool // flags exactly ACK, no payload, no SACK blocks
	last    bool // FIN or RST: the connection ends (its last ACKs go at once)
}

// parseTCP reads an Ethernet frame's TCP header; ok is false for anything else.
func parseTCP(frame []byte) (info tcpInfo, ok bool) {
	if len(frame) < ethHeaderLen {
		return info, false
	}
	p := frame[ethHeaderLen:]
	var seg []byte
	switch etherType(frame) {
	case uint16(header.IPv4ProtocolNumber):
		ip := header.IPv4(p)
		if len(p) < header.IPv4MinimumSize || ip.TransportProtocol() != header.TCPProtocolNumber ||
			int(ip.HeaderLength()) < header.IPv4MinimumSize || int(ip.TotalLength()) > len(p) || int(ip.HeaderLength()) > int(ip.TotalLength()) {
			return info, false
		}
		copy(info.key.addrs[0:4], p[12:16])
		copy(info.key.addrs[16:20], p[16:20])
		seg = p[ip.HeaderLength():ip.TotalLength()]
	case uint16(header.IPv6ProtocolNumber):
		ip := header.IPv6(p)
		if len(p) < header.IPv6MinimumSize || ip.NextHeader() != uint8(header.TCPProtocolNumber) ||
			header.IPv6MinimumSize+int(ip.PayloadLength()) > len(p) {
			return info, false
		}
		copy(info.key.addrs[:], p[8:40])
		seg = p[header.IPv6MinimumSize : header.IPv6MinimumSize+int(ip.PayloadLength())]
	default:
		return info, false
	}
	if len(seg) < header.TCPMinimumSize {
		return info, false
	}
	tcp := header.TCP(seg)
	off := int(tcp.DataOffset())
	if off < header.TCPMinimumSize || off > len(seg) {
		return info, false
	}
	info.key.ports = binary.BigEndian.Uint32(seg[0:4])
	info.ack = tcp.AckNumber()
	info.acks = tcp.Flags()&header.TCPFlagAck != 0
	info.syn = tcp.Flags()&header.TCPFlagSyn != 0
	info.pureAck = tcp.Flags() == header.TCPFlagAck && off == len(seg) && !hasSACK(seg[header.TCPMinimumSize:off])
	info.last = tcp.Flags()&(header.TCPFlagFin|header.TCPFlagRst) != 0
	return info, true
}

// hasSACK reports whether TCP options carry SACK blocks (kind 5).
func hasSACK(opts []byte) bool {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of options
			return false
		case 1: // no-op
			i++
			continue
		case 5:
			return true
		}
		if i+1 >= len(opts) || opts[i+1] < 2 {
			return false
		}
		i += int(opts[i+1])
	}
	return false
}

// admit decides about an outbound frame: true means send it now. A frame of a connection
// also releases that connection's held ACK, which it makes redundant.
func (d *ackDelayer) admit(frame []byte) bool {
	info, ok := parseTCP(frame)
	if !ok {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.flows[info.key]
	if f != nil && info.syn {
		// A new connection on the addresses and ports of one that ended (its entry outlived
		// it: the last ACK after both FINs): nothing of the old one counts.
		f.holding, f.held = false, nil
		f.lastAck, f.acked = info.ack, info.acks
		return true
	}
	if f == nil {
		if info.last {
			return true
		}
		if len(d.flows) >= maxAckFlows {
			d.forgetIdle()
		}
		d.flows[info.key] = &ackFlow{lastAck: info.ack, acked: info.acks}
		return true
	}
	if !f.acked {
		// Only a SYN went before: this is the connection's first acknowledgment.
		if info.acks {
			f.lastAck, f.acked = info.ack, true
		}
		if info.last {
			delete(d.flows, info.key)
		}
		return true
	}
	newly := info.ack - f.lastAck // modulo 2^32, as sequence numbers
	if info.pureAck && newly >= 1<<31 {
		// Older than a segment already sent: the stack's goroutines raced (its processor
		// made this ACK, then a sender's segment acknowledging more left first). The peer
		// would ignore it (an ACK below its send window's left edge updates nothing: RFC 9293
		// 3.10.7.4), so it is not sent at all. It carries no SACK blocks (pureAck).
		d.stats.acksMerged.Add(1)
		return false
	}
	if info.pureAck && newly > 0 && newly < 1<<31 && int(newly) < 2*d.mss {
		if !f.holding {
			f.holding, f.due = true, time.Now().Add(ackDelay)
			d.holding = append(d.holding, f)
			if !d.armed {
				d.armed = true
				d.timer.Reset(ackDelay)
			}
		}
		f.held = append(f.held[:0], frame...)
		return false
	}
	// Anything else goes now, and acknowledges at least what a held ACK would (the stack's
	// acknowledgment number never goes back). After FIN or RST the connection is forgotten:
	// what it still sends goes at once.
	if f.holding {
		d.stats.acksMerged.Add(1)
	}
	f.holding = false
	if info.acks && seqAfterOrEqual(info.ack, f.lastAck) {
		f.lastAck = info.ack
	}
	if info.last {
		delete(d.flows, info.key)
	}
	return true
}

// sent records a frame transmitted without admit (the segments the link cuts).
func (d *ackDelayer) sent(frame []byte) { d.admit(frame) }

func seqAfterOrEqual(a, b uint32) bool { return int32(a-b) >= 0 }

// forgetIdle drops connections without a held ACK (mu held).
func (d *ackDelayer) forgetIdle() {
	for k, f := range d.flows {
		if !f.holding {
			delete(d.flows, k)
		}
	}
}

// expire sends the held ACKs that are due and re-arms the timer for the rest.
func (d *ackDelayer) expire() {
	now := time.Now()
	var due [][]byte
	d.mu.Lock()
	// holding is in the order ACKs were first held, so due ones come first; flows whose
	// ACK was released meanwhile (holding false) are dropped from it on the way.
	i := 0
	for ; i < len(d.holding); i++ {
		f := d.holding[i]
		if !f.holding {
			continue
		}
		if f.due.After(now) {
			break
		}
		// The frame leaves with its buffer: admit may refill the flow's meanwhile.
		due = append(due, f.held)
		f.lastAck = header.TCP(tcpOf(f.held)).AckNumber()
		f.holding, f.held = false, nil
	}
	n := copy(d.holding, d.holding[i:])
	clear(d.holding[n:])
	d.holding = d.holding[:n]
	d.armed = n > 0
	if d.armed {
		d.timer.Reset(d.holding[0].due.Sub(now))
	}
	d.mu.Unlock()
	if len(due) > 0 {
		d.stats.acksExpired.Add(uint64(len(due)))
		d.send(due) // one system call for the ACKs of every connection that are due
	}
}

// tcpOf returns the TCP header of a frame parseTCP accepted.
func tcpOf(frame []byte) []byte {
	p := frame[ethHeaderLen:]
	if etherType(frame) == uint16(header.IPv4ProtocolNumber) {
		return p[header.IPv4(p).HeaderLength():]
	}
	return p[header.IPv6MinimumSize:]
}

// stop sends what is held (the stack is closing) and stops the timer.
func (d *ackDelayer) stop() {
	d.timer.Stop()
	d.mu.Lock()
	var held [][]byte
	for _, f := range d.holding {
		if f.holding {
			held = append(held, f.held)
		}
	}
	clear(d.flows)
	d.holding = nil
	d.mu.Unlock()
	if len(held) > 0 {
		d.send(held)
	}
}
