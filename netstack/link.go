package netstack

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
)

const (
	ethHeaderLen = header.EthernetMinimumSize // 14

	// rxQueueLen bounds the frames waiting between the port's receive callback and the
	// goroutine that hands them to the stack. The callback never waits: a full queue drops the
	// frame (and counts it), as a NIC's ring does. 2048 frames of 2800 bytes hold the largest
	// window one TCP stream advertises (half of the 8 MiB receive buffer), so a burst that
	// arrives while the receive goroutine is descheduled is not lost; 1024 dropped frames
	// in the large-transfer test on 2 busy cores. Worst case it holds 8 MiB of pooled chunks.
	rxQueueLen = 2048
)

var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// link is the stack's Ethernet NIC on a Port.
//
// Receive and transmit never meet. On a plain Port the receive callback only copies the frame
// into a queue (it never calls into the stack, so a port that delivers frames synchronously, as
// Hub does, cannot deadlock against a stack that is transmitting), and one goroutine delivers
// the queued frames to the stack. A BurstPort promises to deliver from goroutines of its own,
// never from inside a write, so there the callback hands each frame to the stack at once —
// through GRO, which coalesces the TCP segments of a burst until the port ends it — saving a
// goroutine hand-off per frame. Transmission calls the port directly from the stack
// goroutine that sends, which the Port contract allows: WriteFrame never calls back into the
// stack.
type link struct {
	port     Port
	batch    BatchPort // port, if it takes batches
	burst    BurstPort // port, if it delivers in bursts
	mac      [6]byte
	linkAddr tcpip.LinkAddress // mac as gVisor wants it, made once (the NIC asks per packet)
	mtu      atomic.Uint32
	stats    *counters

	// groups is the set of multicast MACs the stack subscribed to, read per frame without a
	// lock; writers replace the whole set under Stack.mu.
	groups atomic.Pointer[map[[6]byte]struct{}]

	// mu serialises the receive callback against close: once closed is set, no frame enters
	// rx, so the receive goroutine can release what is left.
	mu     sync.Mutex
	closed bool
	rx     chan *buffer.View
	done   chan struct{}
	wg     sync.WaitGroup

	// gro is used by BurstPort deliveries only, which the port serialises.
	gro gro.GRO

	acks *ackDelayer

	dispatcher atomic.Pointer[stack.NetworkDispatcher]
}

func newLink(port Port, stats *counters) *link {
	l := &link{
		port:  port,
		mac:   port.MAC(),
		stats: stats,
		done:  make(chan struct{}),
	}
	l.linkAddr = tcpip.LinkAddress(l.mac[:])
	l.batch, _ = port.(BatchPort)
	l.burst, _ = port.(BurstPort)
	l.mtu.Store(uint32(port.MTU()))
	l.acks = newAckDelayer(l.writeFrames, stats, port.MTU())
	empty := map[[6]byte]struct{}{}
	l.groups.Store(&empty)
	if l.burst != nil {
		l.gro.Init(true)
		l.gro.Dispatcher = discard{}
		port.SetReceiver(l.receiveNow)
		l.burst.SetBurstEnd(l.endBurst)
		return l
	}
	l.rx = make(chan *buffer.View, rxQueueLen)
	l.wg.Add(1)
	go l.deliver()
	port.SetReceiver(l.receive)
	return l
}

// accept filters what the port delivers: our ether types, frames for us, within the MTU.
func (l *link) accept(dst [6]byte, etherType uint16, payload []byte) bool {
	switch etherType {
	case uint16(header.IPv4ProtocolNumber), uint16(header.IPv6ProtocolNumber), uint16(header.ARPProtocolNumber):
	default:
		l.stats.dropEtherType.Add(1)
		return false
	}
	if dst != l.mac && dst != broadcastMAC {
		if dst[0]&1 == 0 {
			l.stats.dropNotForUs.Add(1)
			return false
		}
		if _, ok := (*l.groups.Load())[dst]; !ok {
			l.stats.dropNotForUs.Add(1)
			return false
		}
	}
	if len(payload) > int(l.mtu.Load()) {
		l.stats.dropOversize.Add(1)
		return false
	}
	if !validChecksums(payload, tcpip.NetworkProtocolNumber(etherType)) {
		l.stats.dropChecksum.Add(1)
		return false
	}
	return true
}

// frameView copies a frame into a pooled view. The stack sees the whole frame, header
// included, so that packet sockets and the header checks of the network layer find the link
// header where they expect it.
func frameView(dst, src [6]byte, etherType uint16, payload []byte) *buffer.View {
	v := buffer.NewViewSize(ethHeaderLen + len(payload))
	b := v.AsSlice()
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:14], etherType)
	copy(b[ethHeaderLen:], payload)
	return v
}

// receive is a plain port's receive callback: filter, copy, queue. It must stay cheap and
// never block.
func (l *link) receive(dst, src [6]byte, etherType uint16, payload []byte) {
	if !l.accept(dst, etherType, payload) {
		return
	}
	v := frameView(dst, src, etherType, payload)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		v.Release()
		return
	}
	select {
	case l.rx <- v:
		l.mu.Unlock()
		l.stats.framesIn.Add(1)
		l.stats.bytesIn.Add(uint64(len(payload)))
	default:
		l.mu.Unlock()
		v.Release()
		l.stats.dropQueueFull.Add(1)
	}
}

// receiveNow is a BurstPort's receive callback: the frame goes to the stack (IP through GRO)
// on the port's goroutine.
func (l *link) receiveNow(dst, src [6]byte, etherType uint16, payload []byte) {
	if !l.accept(dst, etherType, payload) {
		return
	}
	d := l.dispatcher.Load()
	if d == nil {
		return
	}
	l.stats.framesIn.Add(1)
	l.stats.bytesIn.Add(uint64(len(payload)))
	pkt, ok := newInboundPacket(frameView(dst, src, etherType, payload))
	if !ok {
		return
	}
	defer pkt.DecRef()
	proto := tcpip.NetworkProtocolNumber(etherType)
	if pkt.PktType == tcpip.PacketHost && (proto == header.IPv4ProtocolNumber || proto == header.IPv6ProtocolNumber) {
		pkt.NetworkProtocolNumber = proto
		pkt.RXChecksumValidated = true // accept checked
		l.gro.Dispatcher = *d
		l.gro.Enqueue(pkt)
		return
	}
	(*d).DeliverNetworkPacket(proto, pkt)
}

// endBurst hands what GRO holds to the stack.
func (l *link) endBurst() {
	if d := l.dispatcher.Load(); d != nil {
		l.gro.Dispatcher = *d
	} else {
		l.gro.Dispatcher = discard{}
	}
	l.gro.Flush()
}

// discard is the dispatcher of a detached link's GRO.
type discard struct{}

func (discard) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}
func (discard) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer)    {}

// deliver hands queued frames to the stack, one goroutine for the whole NIC.
func (l *link) deliver() {
	defer l.wg.Done()
	for {
		select {
		case v := <-l.rx:
			l.deliverOne(v)
		case <-l.done:
			for {
				select {
				case v := <-l.rx:
					v.Release()
				default:
					return
				}
			}
		}
	}
}

func (l *link) deliverOne(v *buffer.View) {
	d := l.dispatcher.Load()
	if d == nil {
		v.Release()
		return
	}
	pkt, ok := newInboundPacket(v)
	if !ok {
		return
	}
	defer pkt.DecRef()
	(*d).DeliverNetworkPacket(tcpip.NetworkProtocolNumber(etherType(v.AsSlice())), pkt)
}

// newInboundPacket makes a packet of a frame (taking over v) with its link header consumed
// and its type (host, broadcast, multicast) set. ok is false (and the packet gone) when the
// frame is too short.
func newInboundPacket(v *buffer.View) (*stack.PacketBuffer, bool) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
	hdr, ok := pkt.LinkHeader().Consume(ethHeaderLen)
	if !ok {
		pkt.DecRef()
		return nil, false
	}
	// receive let only frames for us in: ours, broadcast or a joined group.
	switch {
	case [6]byte(hdr[0:6]) == broadcastMAC:
		pkt.PktType = tcpip.PacketBroadcast
	case hdr[0]&1 != 0:
		pkt.PktType = tcpip.PacketMulticast
	default:
		pkt.PktType = tcpip.PacketHost
	}
	return pkt, true
}

// close stops receiving; frames still queued are released.
func (l *link) close() {
	l.acks.stop()
	l.port.SetReceiver(nil)
	if l.burst != nil {
		l.burst.SetBurstEnd(nil)
		l.gro.Dispatcher = discard{}
		l.gro.Flush() // release what a burst cut short left
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.done)
	l.wg.Wait()
}

func (l *link) setGroups(g map[[6]byte]struct{}) { l.groups.Store(&g) }

// stack.LinkEndpoint

func (l *link) MTU() uint32                    { return l.mtu.Load() }
func (l *link) SetMTU(mtu uint32)              { l.mtu.Store(mtu) }
func (l *link) MaxHeaderLength() uint16        { return ethHeaderLen }
func (l *link) LinkAddress() tcpip.LinkAddress { return l.linkAddr }

// SetLinkAddress is a no-op: the MAC belongs to the port (it is derived from the node's
// identity on ZeroTier).
func (l *link) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities: link resolution (ARP/NDP) is needed on a shared Ethernet segment. Receive
// checksums are verified by the link (validChecksums, which GRO needs); transmit checksums
// are computed by the stack, or by the link for the segments it cuts: the peers are real
// kernels.
func (l *link) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload
}

func (l *link) Attach(d stack.NetworkDispatcher) {
	if d == nil {
		l.dispatcher.Store(nil)
		return
	}
	l.dispatcher.Store(&d)
}

func (l *link) IsAttached() bool                        { return l.dispatcher.Load() != nil }
func (l *link) Wait()                                   {}
func (l *link) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }
func (l *link) Close()                                  {}
func (l *link) SetOnCloseAction(func())                 {}

func (l *link) AddHeader(pkt *stack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(ethHeaderLen))
	eth.Encode(&header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

func (l *link) ParseHeader(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.LinkHeader().Consume(ethHeaderLen)
	return ok
}

// WritePackets sends each packet as one frame. A frame the port refuses is dropped and
// counted, as a NIC drops on a full ring; TCP recovers it.
func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		l.writeFrame(pkt)
	}
	return pkts.Len(), nil
}

// WritePacket makes the link its own queueing discipline (stack.QueueingDiscipline; Close
// serves both interfaces): gVisor's default one wraps every packet in a newly allocated
// PacketBufferList to call WritePackets.
func (l *link) WritePacket(pkt *stack.PacketBuffer) tcpip.Error {
	l.writeFrame(pkt)
	return nil
}

func (l *link) writeFrame(pkt *stack.PacketBuffer) {
	fb := frameBuffers.Get().(*frameBuffer)
	defer frameBuffers.Put(fb)
	defer fb.reset()
	fb.parts = packetParts(fb.parts, pkt)
	if gso := pkt.GSOOptions; gso.Type != stack.GSONone && gso.NeedsCsum {
		n := pkt.HeaderSize()
		var payload [][]byte
		ok := n <= len(fb.hdr)
		if ok {
			payload, ok = gather(fb.hdr[:n], fb.parts)
		}
		if ok && segment(fb, fb.hdr[:n], payload, gso) {
			l.writeSegments(fb.frames)
		} else {
			l.stats.dropTxError.Add(1)
		}
		return
	}
	b := fb.flatten(fb.parts)
	if len(b) < ethHeaderLen {
		l.stats.dropTxError.Add(1)
		return
	}
	if l.acks.admit(b) {
		l.sendFrame(b)
	}
}

// sendFrame sends one whole Ethernet frame.
func (l *link) sendFrame(b []byte) {
	payload := b[ethHeaderLen:]
	if err := l.port.WriteFrame([6]byte(b[0:6]), [6]byte(b[6:12]), etherType(b), payload); err != nil {
		l.stats.dropTxError.Add(1)
		return
	}
	l.stats.framesOut.Add(1)
	l.stats.bytesOut.Add(uint64(len(payload)))
}

// writeSegments sends the frames of one TCP segment the link cut: a lone pure ACK may be
// held back (ackdelay.go); data releases the connection's held ACK.
func (l *link) writeSegments(frames [][]byte) {
	if len(frames) == 1 && !l.acks.admit(frames[0]) {
		return
	}
	if len(frames) > 1 {
		l.acks.sent(frames[0])
	}
	l.writeFrames(frames)
}

// writeFrames sends whole Ethernet frames, in one call when the port takes batches.
func (l *link) writeFrames(frames [][]byte) {
	if l.batch != nil {
		if err := l.batch.WriteFrames(frames); err != nil {
			l.stats.dropTxError.Add(uint64(len(frames)))
			return
		}
		for _, f := range frames {
			l.stats.framesOut.Add(1)
			l.stats.bytesOut.Add(uint64(len(f) - ethHeaderLen))
		}
		return
	}
	for _, f := range frames {
		if err := l.port.WriteFrame([6]byte(f[0:6]), [6]byte(f[6:12]), etherType(f), f[ethHeaderLen:]); err != nil {
			l.stats.dropTxError.Add(1)
			continue
		}
		l.stats.framesOut.Add(1)
		l.stats.bytesOut.Add(uint64(len(f) - ethHeaderLen))
	}
}

// GSOMaxSize and SupportedGSO make the link a stack.GSOEndpoint: TCP hands over segments of
// up to 64 KiB that segment cuts (see gso.go).
func (l *link) GSOMaxSize() uint32               { return gsoMaxSize }
func (l *link) SupportedGSO() stack.SupportedGSO { return stack.HostGSOSupported }
