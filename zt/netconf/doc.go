// Package netconf implements what a ZeroTier controller tells its members: the Dictionary text
// format, the NetworkConfig carried in it, the rules engine's rule encoding, and the signed
// credentials (certificates of membership and ownership, capabilities, tags, revocations) with
// their signing and verification.
package netconf
