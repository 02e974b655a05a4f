// Package lab builds virtual Ethernet labs out of Linux network namespaces for integration
// tests and benchmark programs, and drives the programs that run in them.
//
// A Lab is one L2 segment: a bridge in a namespace of its own and any number of hosts, each a
// namespace with an eth0 veth plugged into the bridge and addresses from the documentation
// ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, optionally 2001:db8::/64). Programs
// run in a host with Host.Start (long-lived, output in the test log) or Host.Run; Endpoint adds
// an optional argv wrapper so that the same code drives a program in a namespace directly, over
// a zerotier-one TAP device, or under ztnc-run.
//
// Everything a lab creates is removed by T.Cleanup, also when the test fails or panics;
// namespaces left behind by a killed test binary are removed by the next lab created on the
// machine. Names carry the PID, so concurrent test binaries never collide.
//
// The zerotier-one driver (ZT1, Controller) runs only when ZT1_BIN names a zerotier-one 1.14
// binary; see ZT1Bin.
package lab
