// Package controller is a ZeroTier network controller compatible with the one embedded in
// zerotier-one 1.14: it keeps networks and members as JSON files under <home>/controller.d in
// zerotier-one's FileDB layout, answers members' NETWORK_CONFIG_REQUESTs with signed network
// configurations (IP assignment, routes, rules, DNS, credentials), pushes fresh configurations
// and revocations when records change, and serves the /controller HTTP API that zero-ui, ztncui
// and curl scripts drive.
//
// A Controller plugs into a node as its zt.ConfigMaster and answers through the node's
// zt.ConfigSender, which signs, chunks and sends what the controller builds.
package controller
