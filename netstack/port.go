// Package netstack runs a user-space TCP/IP stack (gVisor's tcpip) for one virtual network,
// attached to that network through a virtual Ethernet port.
//
// A Stack (New) has an Ethernet NIC on a Port and a loopback NIC. Hub is an in-process
// Port switch for --local networks and tests. Sockets are TCPEndpoint (NewTCP, Accept) and
// DatagramEndpoint (NewUDP, NewPing), with Linux's semantics: errors are syscall.Errno
// values, socket options take and return the bytes setsockopt/getsockopt carry, readiness
// is reported with poll bits (Readiness, Notify). Splice hands an endpoint's data path to the
// program's end of an AF_UNIX socketpair, proxied by two goroutines, so that reads and
// writes of the program never pass through the supervisor.
package netstack

// Port is a virtual Ethernet port: a stack's only link to its network. The ZeroTier engine
// implements it for each joined network; Hub implements it in-process for --local networks and
// for tests.
//
// The methods use only predeclared types so that implementations need not import this package
// (the ZeroTier engine imports neither netstack nor the supervisor).
type Port interface {
	// MAC is the port's own Ethernet address.
	MAC() [6]byte
	// MTU is the largest IP packet (Ethernet payload, header excluded) the network carries.
	MTU() int
	// WriteFrame sends one Ethernet frame to the network. payload is only valid during the call.
	// It may be called from stack goroutines, so it must never call back into the stack or
	// wait for it.
	WriteFrame(dst, src [6]byte, etherType uint16, payload []byte) error
	// SetReceiver installs the function the port calls with every frame it receives from the
	// network (nil detaches). payload is only valid during the call; the function copies what
	// it keeps. The port calls it from one goroutine at a time.
	SetReceiver(fn func(dst, src [6]byte, etherType uint16, payload []byte))
	// Subscribe asks the network to deliver frames sent to a multicast group, named as ZeroTier
	// names groups: a multicast MAC plus a 32-bit additional distinguishing information (ADI;
	// for the ARP broadcast group it is the IPv4 address being resolved, otherwise 0).
	Subscribe(group [6]byte, adi uint32)
	// Unsubscribe undoes Subscribe.
	Unsubscribe(group [6]byte, adi uint32)
}

// A BatchPort is a Port that sends several frames more cheaply at once; the stack's link
// uses it for the frames of a TCP segment it cuts (see gso.go).
type BatchPort interface {
	Port
	// WriteFrames sends whole Ethernet frames (14-byte header, then the payload), in order,
	// as WriteFrame would. The frames are only valid during the call.
	WriteFrames(frames [][]byte) error
}

// A BurstPort is a Port that calls its receiver only from goroutines of its own — never from
// inside WriteFrame or WriteFrames — in bursts (such as the frames of one read from the
// network), and says when a burst ends. The stack then handles each frame on the port's
// goroutine as it arrives instead of queueing it for a goroutine of its own, and coalesces
// the TCP segments of a burst (GRO) so that TCP processes them as one.
type BurstPort interface {
	Port
	// SetBurstEnd installs the function the port calls after the last frame of each burst
	// it delivered to the receiver (nil detaches), serialised with the receiver's calls.
	SetBurstEnd(fn func())
}
