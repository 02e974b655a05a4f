package netstack

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
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
// Receive and transmit never meet: the port's receive callback only copies the frame into a
// queue (it never calls into the stack, so a port that delivers frames synchronously, as Hub
// does, cannot deadlock against a stack that is transmitting), and one goroutine delivers the
// queued frames to the stack. Transmission calls Port.WriteFrame directly from the stack
// goroutine that sends, which the Port contract allows: WriteFrame never calls back into the
// stack.
type link struct {
	port     Port
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

	dispatcher atomic.Pointer[stack.NetworkDispatcher]
}

func newLink(port Port, stats *counters) *link {
	l := &link{
		port:  port,
		mac:   port.MAC(),
		stats: stats,
		rx:    make(chan *buffer.View, rxQueueLen),
		done:  make(chan struct{}),
	}
	l.linkAddr = tcpip.LinkAddress(l.mac[:])
	l.mtu.Store(uint32(port.MTU()))
	empty := map[[6]byte]struct{}{}
	l.groups.Store(&empty)
	l.wg.Add(1)
	go l.deliver()
	port.SetReceiver(l.receive)
	return l
}

// receive is the port's receive callback: filter, copy, queue. It must stay cheap and never
// block.
func (l *link) receive(dst, src [6]byte, etherType uint16, payload []byte) {
	switch etherType {
	case uint16(header.IPv4ProtocolNumber), uint16(header.IPv6ProtocolNumber), uint16(header.ARPProtocolNumber):
	default:
		l.stats.dropEtherType.Add(1)
		return
	}
	if dst != l.mac && dst != broadcastMAC {
		if dst[0]&1 == 0 {
			l.stats.dropNotForUs.Add(1)
			return
		}
		if _, ok := (*l.groups.Load())[dst]; !ok {
			l.stats.dropNotForUs.Add(1)
			return
		}
	}
	if len(payload) > int(l.mtu.Load()) {
		l.stats.dropOversize.Add(1)
		return
	}
	// The stack sees the whole frame, header included, so that packet sockets and the
	// header checks of the network layer find the link header where they expect it.
	v := buffer.NewViewSize(ethHeaderLen + len(payload))
	b := v.AsSlice()
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:14], etherType)
	copy(b[ethHeaderLen:], payload)

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
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
	defer pkt.DecRef()
	hdr, ok := pkt.LinkHeader().Consume(ethHeaderLen)
	if !ok {
		return
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
	(*d).DeliverNetworkPacket(header.Ethernet(hdr).Type(), pkt)
}

// close stops receiving; frames still queued are released.
func (l *link) close() {
	l.port.SetReceiver(nil)
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

// Capabilities: link resolution (ARP/NDP) is needed on a shared Ethernet segment. Checksums
// are computed and verified by the stack (no offload): the peers are real kernels.
func (l *link) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired
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
	v := pkt.ToView()
	defer v.Release()
	b := v.AsSlice()
	if len(b) < ethHeaderLen {
		l.stats.dropTxError.Add(1)
		return
	}
	var dst, src [6]byte
	copy(dst[:], b[0:6])
	copy(src[:], b[6:12])
	payload := b[ethHeaderLen:]
	if err := l.port.WriteFrame(dst, src, binary.BigEndian.Uint16(b[12:14]), payload); err != nil {
		l.stats.dropTxError.Add(1)
		return
	}
	l.stats.framesOut.Add(1)
	l.stats.bytesOut.Add(uint64(len(payload)))
}
