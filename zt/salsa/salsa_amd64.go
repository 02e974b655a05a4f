//go:build !purego

package salsa

import (
	"math"

	"golang.org/x/sys/cpu"
)

// groupSize is what one iteration of the AVX2 code produces: four blocks.
const groupSize = 4 * BlockSize

var useAVX2 = cpu.X86.HasAVX2

//go:noescape
func xorBlocksAVX2(dst, src *byte, groups int, diag *[16]uint32, doubleRounds int)

func xorKeyStream(dst, src []byte, state *[16]uint32, rounds int) {
	if !useAVX2 || len(src) < 2*BlockSize || rounds%2 != 0 {
		xorKeyStreamGeneric(dst, src, state, rounds)
		return
	}
	s := *state
	for len(src) > 0 {
		// The assembly does not carry from the low counter word into the high one: near a
		// wrap, fall back to one generic block.
		if s[8] > math.MaxUint32-2*groupSize/BlockSize {
			n := min(len(src), BlockSize)
			xorKeyStreamGeneric(dst[:n], src[:n], &s, rounds)
			dst, src = dst[n:], src[n:]
			s[8]++
			if s[8] == 0 {
				s[9]++
			}
			continue
		}
		diag := diagonal(&s)
		if groups := len(src) / groupSize; groups > 0 {
			groups = min(groups, int(math.MaxUint32-s[8])/(groupSize/BlockSize)-1)
			xorBlocksAVX2(&dst[0], &src[0], groups, &diag, rounds/2)
			n := groups * groupSize
			dst, src = dst[n:], src[n:]
			s[8] += uint32(n / BlockSize)
			continue
		}
		// Less than a group left: make a group of keystream and use what is needed.
		var ks [groupSize]byte
		xorBlocksAVX2(&ks[0], &ks[0], 1, &diag, rounds/2)
		for i := range src {
			dst[i] = src[i] ^ ks[i]
		}
		return
	}
}

// diagonal arranges a state in the layout the assembly works in.
func diagonal(s *[16]uint32) [16]uint32 {
	return [16]uint32{
		s[0], s[5], s[10], s[15],
		s[4], s[9], s[14], s[3],
		s[8], s[13], s[2], s[7],
		s[12], s[1], s[6], s[11],
	}
}
