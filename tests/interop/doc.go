// Package interop tests ztnc against a real zerotier-one 1.14 (ZT1_BIN): a zerotier-one root
// and controller, zerotier-one members with kernel TAP devices, and ztnc-run in place of one of
// the members. Without ZT1_BIN every test skips.
package interop
