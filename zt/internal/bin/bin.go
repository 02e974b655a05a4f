// Package bin reads the big-endian fields of ZeroTier's binary formats with bounds checks: a
// Reader records the first overrun and returns zero values after it, so decoders check once.
package bin

import (
	"encoding/binary"
	"errors"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// ErrTruncated is recorded when a read runs past the end of the input.
var ErrTruncated = errors.New("truncated")

// Reader reads fields from B starting at Off.
type Reader struct {
	B   []byte
	Off int
	Err error
}

// Take returns the next n bytes (aliasing B), or nil after an overrun.
func (r *Reader) Take(n int) []byte {
	if r.Err != nil {
		return nil
	}
	if n < 0 || len(r.B)-r.Off < n {
		r.Err = ErrTruncated
		return nil
	}
	b := r.B[r.Off : r.Off+n : r.Off+n]
	r.Off += n
	return b
}

// U8 reads one byte.
func (r *Reader) U8() uint8 {
	if b := r.Take(1); b != nil {
		return b[0]
	}
	return 0
}

// U16 reads a big-endian uint16.
func (r *Reader) U16() uint16 {
	if b := r.Take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// U32 reads a big-endian uint32.
func (r *Reader) U32() uint32 {
	if b := r.Take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// U64 reads a big-endian uint64.
func (r *Reader) U64() uint64 {
	if b := r.Take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// Address reads a 5-byte node address.
func (r *Reader) Address() ztaddr.Address {
	if b := r.Take(ztaddr.AddressLength); b != nil {
		return ztaddr.AddressFrom(b)
	}
	return 0
}

// MAC reads a 6-byte MAC.
func (r *Reader) MAC() ztaddr.MAC {
	if b := r.Take(6); b != nil {
		return ztaddr.MACFrom(b)
	}
	return ztaddr.MAC{}
}

// InetAddress reads an InetAddress.
func (r *Reader) InetAddress() ztaddr.InetAddress {
	if r.Err != nil {
		return ztaddr.InetAddress{}
	}
	a, n, err := ztaddr.ParseInetAddress(r.B[r.Off:])
	if err != nil {
		r.Err = err
		return ztaddr.InetAddress{}
	}
	r.Off += n
	return a
}

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.B) - r.Off }

// Rest returns the unread bytes and consumes them.
func (r *Reader) Rest() []byte { return r.Take(r.Len()) }

// Copy returns a copy of the next n bytes.
func (r *Reader) Copy(n int) []byte {
	if b := r.Take(n); b != nil {
		return append([]byte{}, b...)
	}
	return nil
}

// Fail records err unless an error is already recorded.
func (r *Reader) Fail(err error) {
	if r.Err == nil {
		r.Err = err
	}
}

// AppendU16 etc. are the writing counterparts, for symmetry at call sites.
var (
	AppendU16 = binary.BigEndian.AppendUint16
	AppendU32 = binary.BigEndian.AppendUint32
	AppendU64 = binary.BigEndian.AppendUint64
)

// Group reads a 10-byte multicast group (MAC, ADI).
func (r *Reader) Group() ztaddr.MulticastGroup {
	if b := r.Take(ztaddr.MulticastGroupLength); b != nil {
		return ztaddr.MulticastGroupFrom(b)
	}
	return ztaddr.MulticastGroup{}
}
