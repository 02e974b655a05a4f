// Package zt is a ZeroTier 1.x node, interoperable with zerotier-one 1.14: it joins networks
// through roots and controllers and carries their Ethernet frames. A node whose identity is a
// root of its planet serves as that root (see Config.RootEndpoints).
//
// Use:
//
//	n, err := zt.NewNode(ctx, zt.Config{Home: home}) // identity, planet, caches in home
//	n.SetConfigMaster(controller)                    // optional: serve our own networks
//	n.Start()                                        // logs the node address
//	defer n.Close()
//	nw, err := n.Join(nwid)                          // a cached config applies at once
//	st, err := nw.WaitReady(ctx)                     // status OK with addresses
//	stack := netstack.New(nw, ...)                   // *Network is a netstack.Port
//	for range nw.Notify() { apply(nw.State()) }      // config changes: addresses, routes, MTU
//
// Files, one concept each as in zerotier-one's node/: node.go (Node, Config, lifecycle),
// home.go (state directory), transport.go and udp_*.go (sockets), topology.go (planet, moons,
// peers), peer.go and path.go, switch.go (send and receive pipelines, WHOIS, relaying),
// incoming.go (verb handlers), network.go (Network, configs, frames), membership.go
// (certificates of membership, credentials), multicast.go (LIKE, GATHER, MULTICAST_FRAME),
// filter.go (rules), controllerlink.go (ConfigMaster/ConfigSender), root.go (root planet),
// peercache.go (peers.d), timers.go, counters.go.
package zt
