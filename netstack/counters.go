package netstack

import "sync/atomic"

// Counters is a snapshot of a stack's link and TCP counters.
type Counters struct {
	FramesIn, FramesOut uint64 // frames queued to / sent by the stack
	BytesIn, BytesOut   uint64 // Ethernet payload bytes of those frames

	// Inbound frames dropped, by reason.
	DropEtherType uint64 // neither IPv4, IPv6 nor ARP
	DropNotForUs  uint64 // unicast to another MAC, or a multicast group not subscribed
	DropOversize  uint64 // payload larger than the MTU
	DropQueueFull uint64 // the stack was behind (receive queue full)
	// DropChecksum counts IP packets with a wrong IPv4 header, TCP, UDP or ICMP checksum, or
	// lengths that do not add up (the link checks them: see validChecksums).
	DropChecksum uint64

	// DropTxError counts outbound frames the port refused.
	DropTxError uint64

	// Datagrams of spliced UDP/ICMP endpoints dropped by the proxy: sends that failed (the
	// error is pending on the endpoint), and receptions the program's socket refused.
	DropDatagramSend, DropDatagramRecv uint64

	// Pure ACKs the link held back (see ackdelay.go): AcksMerged were made redundant by a
	// segment of their connection (sent within the delay, or before them), AcksExpired left
	// when the delay ran out.
	AcksMerged, AcksExpired uint64

	// Loops of spliced sockets parked without a goroutine (see park.go): Parks in all,
	// LoopsParked now (two per socket whose program and peer are both quiet). LoopsRunning
	// are on a goroutine now (running, or waiting on one). ParkFailures counts parks that
	// the stack's epoll set refused (the loop waits on its goroutine instead).
	Parks, LoopsParked, LoopsRunning, ParkFailures uint64

	// From the TCP layer.
	TCPRetransmits   uint64
	TCPResetsSent    uint64
	TCPChecksumError uint64
	// IPMalformed counts IPv4/IPv6 packets dropped as malformed.
	IPMalformed uint64
}

type counters struct {
	framesIn, framesOut                                      atomic.Uint64
	bytesIn, bytesOut                                        atomic.Uint64
	dropEtherType, dropNotForUs, dropOversize, dropQueueFull atomic.Uint64
	dropChecksum                                             atomic.Uint64
	dropTxError                                              atomic.Uint64
	dropDatagramSend, dropDatagramRecv                       atomic.Uint64
	acksMerged, acksExpired                                  atomic.Uint64
	parks, parkFailures                                      atomic.Uint64
}

// Counters returns the stack's counters.
func (s *Stack) Counters() Counters {
	st := s.st.Stats()
	return Counters{
		FramesIn:         s.stats.framesIn.Load(),
		FramesOut:        s.stats.framesOut.Load(),
		BytesIn:          s.stats.bytesIn.Load(),
		BytesOut:         s.stats.bytesOut.Load(),
		DropEtherType:    s.stats.dropEtherType.Load(),
		DropNotForUs:     s.stats.dropNotForUs.Load(),
		DropOversize:     s.stats.dropOversize.Load(),
		DropQueueFull:    s.stats.dropQueueFull.Load(),
		DropChecksum:     s.stats.dropChecksum.Load(),
		DropTxError:      s.stats.dropTxError.Load(),
		DropDatagramSend: s.stats.dropDatagramSend.Load(),
		DropDatagramRecv: s.stats.dropDatagramRecv.Load(),
		AcksMerged:       s.stats.acksMerged.Load(),
		AcksExpired:      s.stats.acksExpired.Load(),
		Parks:            s.stats.parks.Load(),
		LoopsParked:      s.parkedLoops(),
		LoopsRunning:     uint64(max(s.parker.running.Load(), 0)),
		ParkFailures:     s.stats.parkFailures.Load(),
		TCPRetransmits:   st.TCP.Retransmits.Value(),
		TCPResetsSent:    st.TCP.ResetsSent.Value(),
		TCPChecksumError: st.TCP.ChecksumErrors.Value(),
		IPMalformed:      st.IP.MalformedPacketsReceived.Value(),
	}
}
