//go:build !purego

package wire

import (
	"encoding/binary"
	"math/bits"
	"sync"

	"golang.org/x/sys/cpu"
)

// AES-CTR without crypto/cipher.NewCTR. Every AES-GMAC-SIV body needs a CTR stream under K1
// from its own IV, and crypto/cipher builds one per call: a 512-byte allocation holding a copy
// of the key schedule. On a long body (a full TCP segment) that was a member's largest
// allocation, and on a busy one it set the pace of heap growth and collections. Here the
// schedule is expanded once per key, in the byte order AES-NI's round instructions read, and
// ctrBlocks encrypts eight counter blocks at a time with no allocation.

// ctrSchedule is K1's AES-256 encryption schedule: 15 round keys of 16 bytes.
type ctrSchedule struct {
	rk [240]byte
	ok bool // this CPU has AES-NI and SSSE3, and the schedule is expanded
}

var haveCTRAsm = cpu.X86.HasAES && cpu.X86.HasSSSE3

// ctrBlocks XORs n blocks of src with the AES-256 key stream of rk into dst (which may be src),
// counting from *ctr in its last 32 bits, big-endian; it leaves the next counter in *ctr.
//
//go:noescape
func ctrBlocks(rk *[240]byte, ctr *[16]byte, dst, src *byte, n int)

func newCTRSchedule(key []byte) (s ctrSchedule) {
	if !haveCTRAsm || len(key) != 32 {
		return s
	}
	var w [60]uint32
	for i := range 8 {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := uint32(1)
	for i := 8; i < len(w); i++ {
		t := w[i-1]
		switch i % 8 {
		case 0:
			t = subWord(t<<8|t>>24) ^ rcon<<24
			rcon = uint32(gfDouble(byte(rcon)))
		case 4:
			t = subWord(t)
		}
		w[i] = w[i-8] ^ t
	}
	for i, v := range w {
		binary.BigEndian.PutUint32(s.rk[4*i:], v)
	}
	s.ok = true
	return s
}

// xor XORs b with the key stream from iv, as crypto/cipher's CTR does, and reports whether it
// could: the schedule is there and the counter's last 32 bits do not wrap within b (AES-GMAC-SIV
// clears their top bit, so a packet never wraps them).
func (s *ctrSchedule) xor(iv *[16]byte, b []byte) bool {
	blocks := (len(b) + 15) / 16
	if !s.ok || uint64(binary.BigEndian.Uint32(iv[12:]))+uint64(blocks) > 1<<32 {
		return false
	}
	full := len(b) / 16
	if full > 0 {
		ctrBlocks(&s.rk, iv, &b[0], &b[0], full)
	}
	if tail := b[full*16:]; len(tail) > 0 {
		var last [16]byte
		copy(last[:], tail)
		ctrBlocks(&s.rk, iv, &last[0], &last[0], 1)
		copy(tail, last[:])
	}
	return true
}

// subWord applies the AES S-box to each byte of w.
func subWord(w uint32) uint32 {
	sb := sbox()
	return uint32(sb[w>>24])<<24 | uint32(sb[w>>16&0xff])<<16 | uint32(sb[w>>8&0xff])<<8 | uint32(sb[w&0xff])
}

// sbox is the AES S-box, computed rather than tabulated: the multiplicative inverse in
// GF(2^8) modulo x^8+x^4+x^3+x+1 followed by the affine map of FIPS 197 §5.1.1. Walking p
// through the powers of 3 (a generator) and q through those of its inverse keeps q = p⁻¹.
var sbox = sync.OnceValue(func() *[256]byte {
	var s [256]byte
	p, q := byte(1), byte(1)
	for {
		p ^= gfDouble(p) // p × 3
		q ^= q << 1      // q ÷ 3
		q ^= q << 2
		q ^= q << 4
		if q&0x80 != 0 {
			q ^= 0x09
		}
		s[p] = q ^ bits.RotateLeft8(q, 1) ^ bits.RotateLeft8(q, 2) ^ bits.RotateLeft8(q, 3) ^ bits.RotateLeft8(q, 4) ^ 0x63
		if p == 1 {
			break
		}
	}
	s[0] = 0x63
	return &s
})

// gfDouble multiplies b by x in GF(2^8) modulo x^8+x^4+x^3+x+1.
func gfDouble(b byte) byte {
	return b<<1 ^ (b>>7)*0x1b
}
