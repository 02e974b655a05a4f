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
// binary; see ZT1Bin. A ZeroTier lab puts the root at LabRootAddr (LabPlanet names it there)
// and members in other /24s than each other: zerotier-one verifies at most one new identity
// per source /24 every 2 s and silently drops the rest until their next HELLO, 5 s later.
// zerotier-one refuses loopback paths, which is why members live in namespaces.
//
// A test with a zerotier-one root + controller and one member:
//
//	l := lab.New(t, lab.Config{})
//	root := lab.StartZT1(t, l.AddHost("root", lab.LabRootAddr), lab.ZT1Config{
//		Home: lab.NewLabHome(t, lab.Identity(1)), Port: lab.LabRootPort})
//	ctrl := root.Controller()
//	ctrl.Ready(30 * time.Second)
//	nw, _ := ctrl.CreateNetwork(ctx, lab.NewNetwork("test", netip.MustParsePrefix("203.0.113.0/24")))
//	home := lab.NewLabHome(t, lab.Identity(2))
//	home.PreJoin(t, nw.ID)
//	ctrl.Authorize(ctx, nw.ID, home.Address())
//	m := lab.StartZT1(t, l.AddHost("m", "198.51.100.2"), lab.ZT1Config{Home: home})
//	ep := m.WaitNetwork(t, nw.ID, time.Minute) // programs on ep reach the network at ep.Addr
//	ep.Run(t, "ping", "-c1", peer.Addr.String())
package lab
