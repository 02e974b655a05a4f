package ztaddr

import (
	"fmt"
	"strconv"
)

// NetworkID names a virtual network: the controller's address in the top 40 bits, a number the
// controller chose in the low 24.
type NetworkID uint64

// NewNetworkID composes a network ID from its controller and 24-bit number.
func NewNetworkID(controller Address, number uint32) NetworkID {
	return NetworkID(uint64(controller)<<24 | uint64(number&0xffffff))
}

// Controller is the address of the node that configures the network.
func (n NetworkID) Controller() Address { return Address(uint64(n) >> 24) }

// Number is the controller-chosen low 24 bits.
func (n NetworkID) Number() uint32 { return uint32(n) & 0xffffff }

// String is the 16-digit lowercase hex form.
func (n NetworkID) String() string { return fmt.Sprintf("%016x", uint64(n)) }

// ParseNetworkID parses the 16-digit hex form.
func ParseNetworkID(s string) (NetworkID, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("network ID %q: want 16 hex digits", s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("network ID %q: not hex", s)
	}
	return NetworkID(v), nil
}
