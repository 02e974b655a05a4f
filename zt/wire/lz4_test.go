package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestLZ4RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := [][]byte{nil, []byte("a"), []byte("abcdabcdabcd"), []byte(strings.Repeat("x", 5000)),
		[]byte(strings.Repeat("MULTICAST_LIKE d9d826a22363a18e ff:ff:ff:ff:ff:ff ", 100))}
	for range 200 {
		n := rng.IntN(MaxPacketSize)
		b := make([]byte, n)
		alphabet := 1 + rng.IntN(255)
		for i := range b {
			if i > 8 && rng.IntN(4) == 0 {
				b[i] = b[i-1-rng.IntN(8)]
			} else {
				b[i] = byte(rng.IntN(alphabet))
			}
		}
		inputs = append(inputs, b)
	}
	for _, in := range inputs {
		c := lz4Compress(nil, in)
		out, err := lz4Decompress(nil, c, MaxPacketSize)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("%d bytes: round trip failed: %v", len(in), err)
		}
	}
	// Packets: only worthwhile compression is applied.
	p := append(NewPacket(nil, 1, 2, 3, VerbMulticastLike), bytes.Repeat([]byte{1, 2, 3, 4, 5, 6}, 100)...)
	c := Compress(nil, p)
	if !c.Compressed() || len(c) >= len(p) || c.Verb() != VerbMulticastLike {
		t.Fatalf("compressible packet: %d -> %d", len(p), len(c))
	}
	d, err := Decompress(nil, c)
	if err != nil || !bytes.Equal(d, p) || d.Compressed() {
		t.Fatalf("decompress: %v", err)
	}
	small := append(NewPacket(nil, 1, 2, 3, VerbFrame), bytes.Repeat([]byte{0}, 64)...)
	if Compress(nil, small).Compressed() {
		t.Error("64-byte payload compressed")
	}
	random := append(NewPacket(nil, 1, 2, 3, VerbFrame), make([]byte, 500)...)
	for i := HeaderSize; i < len(random); i++ {
		random[i] = byte(rng.Uint32())
	}
	if q := Compress(nil, random); q.Compressed() || !bytes.Equal(q, random) {
		t.Error("incompressible payload compressed")
	}
}

func TestLZ4Malformed(t *testing.T) {
	for _, b := range [][]byte{
		{},                      // nothing
		{0x10},                  // literal missing
		{0x00, 0x00},            // no final literals, truncated offset
		{0x10, 'a', 0x00, 0x00}, // offset 0
		{0x10, 'a', 0x05, 0x00}, // offset beyond output
		{0xf0},                  // literal length extension missing
		{0x1f, 'a', 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10, 0x10, 'b'}, // output over the limit
	} {
		if _, err := lz4Decompress(nil, b, MaxPacketSize); !errors.Is(err, ErrBadCompression) {
			t.Errorf("%x: %v", b, err)
		}
	}
	p := append(NewPacket(nil, 1, 2, 3, VerbFrame|0x80), 0x10)
	p[idxVerb] |= verbFlagCompressed
	if _, err := Decompress(nil, p); !errors.Is(err, ErrBadCompression) {
		t.Errorf("bad compressed packet: %v", err)
	}
}
