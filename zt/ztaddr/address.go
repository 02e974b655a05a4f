package ztaddr

import (
	"errors"
	"fmt"
	"strconv"
)

// AddressLength is the size of an Address on the wire.
const AddressLength = 5

// Address is a 40-bit ZeroTier node address, the last 5 bytes of its identity's memory-hard
// hash. It travels as 5 big-endian bytes.
type Address uint64

// ErrReservedAddress is returned for addresses no identity may have: zero, or first byte 0xff
// (that prefix marks fragments on the wire).
var ErrReservedAddress = errors.New("reserved ZeroTier address")

// AddressFrom reads an address from the first 5 bytes of b.
func AddressFrom(b []byte) Address {
	_ = b[4]
	return Address(uint64(b[0])<<32 | uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4]))
}

// Put writes the address into the first 5 bytes of b.
func (a Address) Put(b []byte) {
	_ = b[4]
	b[0], b[1], b[2], b[3], b[4] = byte(a>>32), byte(a>>24), byte(a>>16), byte(a>>8), byte(a)
}

// Append appends the 5-byte encoding to b.
func (a Address) Append(b []byte) []byte {
	return append(b, byte(a>>32), byte(a>>24), byte(a>>16), byte(a>>8), byte(a))
}

// IsReserved reports whether no identity may have this address.
func (a Address) IsReserved() bool { return a == 0 || a>>32 == 0xff }

// String is the 10-digit lowercase hex form ("8604bca100").
func (a Address) String() string { return fmt.Sprintf("%010x", uint64(a)&0xffffffffff) }

// ParseAddress parses the 10-digit hex form (case-insensitive). Reserved addresses parse; check
// IsReserved where they are not allowed.
func ParseAddress(s string) (Address, error) {
	if len(s) != 10 {
		return 0, fmt.Errorf("ZeroTier address %q: want 10 hex digits", s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("ZeroTier address %q: not hex", s)
	}
	return Address(v), nil
}
