// Package salsa implements the Salsa20 stream cipher as ZeroTier uses it: 20 rounds for the
// memory-hard identity hash, 12 rounds for packet encryption and MAC keys. The nonce is 8 bytes
// and the 64-bit block counter starts at 0 (state words 8 and 9, little-endian).
package salsa

import "encoding/binary"

// BlockSize is the size of one Salsa20 keystream block.
const BlockSize = 64

// Cipher is a Salsa20 keystream positioned at a block boundary. The zero value is not usable;
// create one with New. A Cipher is a value: copying it copies the stream position.
type Cipher struct {
	state  [16]uint32 // input block; words 8 and 9 hold the counter
	rounds int
}

// New returns the keystream for key and nonce with the given number of rounds (12 or 20; any
// even number works), positioned at block 0.
func New(key *[32]byte, nonce *[8]byte, rounds int) Cipher {
	var c Cipher
	c.rounds = rounds
	s := &c.state
	s[0] = 0x61707865
	s[1] = binary.LittleEndian.Uint32(key[0:])
	s[2] = binary.LittleEndian.Uint32(key[4:])
	s[3] = binary.LittleEndian.Uint32(key[8:])
	s[4] = binary.LittleEndian.Uint32(key[12:])
	s[5] = 0x3320646e
	s[6] = binary.LittleEndian.Uint32(nonce[0:])
	s[7] = binary.LittleEndian.Uint32(nonce[4:])
	s[10] = 0x79622d32
	s[11] = binary.LittleEndian.Uint32(key[16:])
	s[12] = binary.LittleEndian.Uint32(key[20:])
	s[13] = binary.LittleEndian.Uint32(key[24:])
	s[14] = binary.LittleEndian.Uint32(key[28:])
	s[15] = 0x6b206574
	return c
}

// Counter is the index of the next keystream block.
func (c *Cipher) Counter() uint64 { return uint64(c.state[8]) | uint64(c.state[9])<<32 }

// Seek positions the stream at block n.
func (c *Cipher) Seek(n uint64) { c.state[8], c.state[9] = uint32(n), uint32(n>>32) }

// XORKeyStream XORs src with the keystream into dst (which may be src itself; it must be at least
// as long as src). It consumes ceil(len(src)/64) blocks: the unused rest of a final partial
// block is discarded, as in ZeroTier's implementation.
func (c *Cipher) XORKeyStream(dst, src []byte) {
	if len(src) == 0 {
		return
	}
	dst = dst[:len(src)]
	xorKeyStream(dst, src, &c.state, c.rounds)
	c.Seek(c.Counter() + uint64((len(src)+BlockSize-1)/BlockSize))
}

// KeyStream fills dst with keystream.
func (c *Cipher) KeyStream(dst []byte) {
	clear(dst)
	c.XORKeyStream(dst, dst)
}

// xorKeyStreamGeneric XORs keystream starting at the counter in state into dst, without
// advancing the counter in state.
func xorKeyStreamGeneric(dst, src []byte, state *[16]uint32, rounds int) {
	in := *state
	ctr := uint64(in[8]) | uint64(in[9])<<32
	var ks [BlockSize]byte
	for len(src) > 0 {
		in[8], in[9] = uint32(ctr), uint32(ctr>>32)
		block(&ks, &in, rounds)
		if len(src) < BlockSize {
			for i := range src {
				dst[i] = src[i] ^ ks[i]
			}
			return
		}
		d, s := dst[:BlockSize], src[:BlockSize]
		for i := 0; i < BlockSize; i += 8 {
			binary.LittleEndian.PutUint64(d[i:], binary.LittleEndian.Uint64(s[i:])^binary.LittleEndian.Uint64(ks[i:]))
		}
		dst, src = dst[BlockSize:], src[BlockSize:]
		ctr++
	}
}

// block computes one keystream block for the input state.
func block(out *[BlockSize]byte, in *[16]uint32, rounds int) {
	x0, x1, x2, x3 := in[0], in[1], in[2], in[3]
	x4, x5, x6, x7 := in[4], in[5], in[6], in[7]
	x8, x9, x10, x11 := in[8], in[9], in[10], in[11]
	x12, x13, x14, x15 := in[12], in[13], in[14], in[15]
	for i := 0; i < rounds; i += 2 {
		// Column round.
		x4 ^= rotl(x0+x12, 7)
		x8 ^= rotl(x4+x0, 9)
		x12 ^= rotl(x8+x4, 13)
		x0 ^= rotl(x12+x8, 18)
		x9 ^= rotl(x5+x1, 7)
		x13 ^= rotl(x9+x5, 9)
		x1 ^= rotl(x13+x9, 13)
		x5 ^= rotl(x1+x13, 18)
		x14 ^= rotl(x10+x6, 7)
		x2 ^= rotl(x14+x10, 9)
		x6 ^= rotl(x2+x14, 13)
		x10 ^= rotl(x6+x2, 18)
		x3 ^= rotl(x15+x11, 7)
		x7 ^= rotl(x3+x15, 9)
		x11 ^= rotl(x7+x3, 13)
		x15 ^= rotl(x11+x7, 18)
		// Row round.
		x1 ^= rotl(x0+x3, 7)
		x2 ^= rotl(x1+x0, 9)
		x3 ^= rotl(x2+x1, 13)
		x0 ^= rotl(x3+x2, 18)
		x6 ^= rotl(x5+x4, 7)
		x7 ^= rotl(x6+x5, 9)
		x4 ^= rotl(x7+x6, 13)
		x5 ^= rotl(x4+x7, 18)
		x11 ^= rotl(x10+x9, 7)
		x8 ^= rotl(x11+x10, 9)
		x9 ^= rotl(x8+x11, 13)
		x10 ^= rotl(x9+x8, 18)
		x12 ^= rotl(x15+x14, 7)
		x13 ^= rotl(x12+x15, 9)
		x14 ^= rotl(x13+x12, 13)
		x15 ^= rotl(x14+x13, 18)
	}
	put := func(i int, v uint32) { binary.LittleEndian.PutUint32(out[4*i:], v+in[i]) }
	put(0, x0)
	put(1, x1)
	put(2, x2)
	put(3, x3)
	put(4, x4)
	put(5, x5)
	put(6, x6)
	put(7, x7)
	put(8, x8)
	put(9, x9)
	put(10, x10)
	put(11, x11)
	put(12, x12)
	put(13, x13)
	put(14, x14)
	put(15, x15)
}

func rotl(x uint32, n uint) uint32 { return x<<n | x>>(32-n) }
