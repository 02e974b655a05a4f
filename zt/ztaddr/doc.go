// Package ztaddr holds the names ZeroTier gives to things: 40-bit node addresses, 64-bit network
// IDs, the Ethernet MACs derived from both, multicast groups, and InetAddress, the serialized
// form of a physical (IP, port) endpoint. All are small values with their wire encodings.
package ztaddr
