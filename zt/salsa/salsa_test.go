package salsa

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func seq32() *[32]byte {
	var k [32]byte
	for i := range k {
		k[i] = byte(i)
	}
	return &k
}

func seq8() *[8]byte {
	var n [8]byte
	for i := range n {
		n[i] = byte(i)
	}
	return &n
}

// First keystream block for key 00..1f, nonce 00..07 (zt1-protocol.md §10, from 1.14.1's code).
func TestVectors(t *testing.T) {
	for _, tc := range []struct {
		rounds int
		want   string
	}{
		{12, "06c9dd540af341e7e77e5d604594247d13accb164c02b45db37d1abdcddb501e7bdf1a99c6ac8ad2d71c14424f03a056acfb41cfbaea8c84881e7fcbf0576c33"},
		{20, "2ead0f5f185729ced672b3a928e454f72fdb44a87b9cd8d219e4ec14aef9c6bc77bf057f5659d7753848f8d3fe769ca5fdd8057d46326990e5f136e2fcb7bb7c"},
	} {
		c := New(seq32(), seq8(), tc.rounds)
		got := make([]byte, 64)
		c.KeyStream(got)
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("Salsa20/%d block 0 = %x, want %s", tc.rounds, got, tc.want)
		}
		if c.Counter() != 1 {
			t.Errorf("counter after one block = %d", c.Counter())
		}
	}
}

// The stream is the same whether produced in one call, block by block, or with partial tails
// (a partial block consumes the whole block), and whatever path xorBlocks takes.
func TestStreamConsistency(t *testing.T) {
	for _, rounds := range []int{12, 20} {
		for _, n := range []int{0, 1, 63, 64, 65, 127, 128, 200, 511, 512, 513, 1000, 1432, 4096, 10024} {
			ref := make([]byte, n)
			c := New(seq32(), seq8(), rounds)
			c.Seek(0xfffffffe) // exercise the carry into word 9
			for off := 0; off < n; off += BlockSize {
				var ks [BlockSize]byte
				block(&ks, &c.state, rounds)
				c.Seek(c.Counter() + 1)
				copy(ref[off:], ks[:])
			}
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(i * 7)
			}
			want := make([]byte, n)
			for i := range want {
				want[i] = src[i] ^ ref[i]
			}
			c2 := New(seq32(), seq8(), rounds)
			c2.Seek(0xfffffffe)
			got := make([]byte, n)
			c2.XORKeyStream(got, src)
			if !bytes.Equal(got, want) {
				t.Fatalf("rounds %d len %d: XORKeyStream differs from block-by-block keystream", rounds, n)
			}
			if c2.Counter() != 0xfffffffe+uint64((n+63)/64) {
				t.Fatalf("rounds %d len %d: counter %x", rounds, n, c2.Counter())
			}
			// In place.
			c3 := New(seq32(), seq8(), rounds)
			c3.Seek(0xfffffffe)
			c3.XORKeyStream(src, src)
			if !bytes.Equal(src, want) {
				t.Fatalf("rounds %d len %d: in-place result differs", rounds, n)
			}
		}
	}
}

// The platform implementation (AVX2 assembly on amd64) produces exactly the generic keystream
// for every length and start position, including around the 32-bit counter wrap.
func TestImplementationMatchesGeneric(t *testing.T) {
	for _, rounds := range []int{12, 20} {
		for _, start := range []uint64{0, 1, 3, 1000, 0xffffffff - 20, 0xfffffffc, 0xffffffff, 1 << 40} {
			for n := 0; n < 1300; n += 1 + n/7 {
				src := make([]byte, n)
				for i := range src {
					src[i] = byte(i*13 + 5)
				}
				c := New(seq32(), seq8(), rounds)
				c.Seek(start)
				want := make([]byte, n)
				xorKeyStreamGeneric(want, src, &c.state, rounds)
				got := make([]byte, n)
				c.XORKeyStream(got, src)
				if !bytes.Equal(got, want) {
					t.Fatalf("rounds %d start %#x len %d: differs from the generic implementation", rounds, start, n)
				}
			}
		}
	}
}
