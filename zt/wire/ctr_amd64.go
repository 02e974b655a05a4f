//go:build !purego

package wire

import (
	"encoding/binary"

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

// subWord applies the AES S-box to each byte of w with AESENCLAST (constant time, unlike a
// table indexed by key bytes): on a state whose four columns are all w, ShiftRows moves
// nothing, and a zero round key leaves SubBytes alone.
func subWord(w uint32) uint32

// newCTRSchedule expands an AES-256 key as FIPS 197 §5.2 does; the schedule is unusable (ok
// false) where the CPU lacks the instructions.
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
			rcon <<= 1 // 0x01 … 0x40: AES-256 never reaches the reduction
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
