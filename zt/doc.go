// Package zt is a ZeroTier 1.x node, interoperable with zerotier-one 1.14: it joins networks
// through roots and controllers and carries their Ethernet frames.
package zt
