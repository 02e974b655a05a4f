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
