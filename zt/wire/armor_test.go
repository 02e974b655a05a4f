package wire

import (
	"bytes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ztnc/ztnc/zt/identity"
)

func testKey() *Key {
	var k identity.SharedKey
	for i := range k {
		k[i] = byte(i)
	}
	return NewKey(k)
}

func vectorPacket() Packet {
	p := NewPacket(nil, 0x0102030405060708, 0x0a0b0c0d0e, 0x1112131415, VerbEcho)
	return append(p, "hello zerotier"...)
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// zt1-protocol.md §10: produced by zerotier-one 1.14.1's own objects.
func TestArmorVectors(t *testing.T) {
	k := testKey()
	if got := hex.EncodeToString(kbkdf(k.Raw(), '0')); got != "3c9f2d146f740b356219369b6e6049a653eb782dda0dc7b229af44780963b933" {
		t.Errorf("K0 = %s", got)
	}
	if got := hex.EncodeToString(kbkdf(k.Raw(), '1')); got != "4da2a815e8308ceb4bbc96c3c09db76aebd9bcca711ea8c57aca4cc9fe969a1f" {
		t.Errorf("K1 = %s", got)
	}
	for _, tc := range []struct {
		c    Cipher
		want string
	}{
		{CipherPoly1305None, "01020304050607080a0b0c0d0e1112131415001d4cc324a81a8b170868656c6c6f207a65726f74696572"},
		{CipherPoly1305Salsa2012, "01020304050607080a0b0c0d0e11121314158829001afcacfaaafdf6dc3f732c6a9fdff3e938698aba37"},
		{CipherAESGMACSIV, "c21e16a3684d21ba0a0b0c0d0e111213141518c4126afb5a0a5d6ebd95e66d491c2d1498402ac5dfde8c"},
	} {
		p := vectorPacket()
		Armor(p, k, tc.c)
		if got := hex.EncodeToString(p); got != tc.want {
			t.Errorf("cipher %d:\n got %s\nwant %s", tc.c, got, tc.want)
		}
		if p.Cipher() != tc.c {
			t.Errorf("cipher bits %d", p.Cipher())
		}
		// Relaying changes hops only; dearmor must still succeed.
		p.IncrementHops()
		p.IncrementHops()
		if err := Dearmor(p, k); err != nil {
			t.Fatalf("cipher %d: %v", tc.c, err)
		}
		if p.Verb() != VerbEcho || string(p.Payload()) != "hello zerotier" || p.Hops() != 2 {
			t.Errorf("cipher %d: dearmored to %x", tc.c, p)
		}
		// Any change outside the hop count is caught.
		for _, i := range []int{0, 7, 8, 12, 13, 17, 18, 19, 26, 27, 41} {
			q := Packet(mustHex(tc.want))
			q[i] ^= 0x08
			if err := Dearmor(q, k); !errors.Is(err, ErrBadMAC) && !(i == 18 && errors.Is(err, ErrUnsupportedCipher)) {
				t.Errorf("cipher %d: flipped byte %d: %v", tc.c, i, err)
			}
		}
		q := Packet(mustHex(tc.want))
		if err := Dearmor(q[:len(q)-1], k); !errors.Is(err, ErrBadMAC) {
			t.Errorf("cipher %d: truncated packet: %v", tc.c, err)
		}
	}
	p := vectorPacket()
	CryptField(p, k, HeaderSize)
	if got := hex.EncodeToString(p.Payload()); got != "958425829166eda35191c55eee68" {
		t.Errorf("cryptField = %s", got)
	}
	CryptField(p, k, HeaderSize)
	if string(p.Payload()) != "hello zerotier" {
		t.Error("cryptField is not an involution")
	}
}

// TestXorCTR checks both CTR paths against crypto/cipher's: the assembly one where this machine
// has it and the portable one (single blocks up to shortCTR, then crypto/cipher's), on every
// length around the block and batch sizes and shortCTR, packet-sized ones, and counters whose
// increment carries across bytes or wraps the last 32 bits (the assembly declines those).
func TestXorCTR(t *testing.T) {
	k := testKey()
	portable := *k
	portable.ctr = ctrSchedule{}
	ivs := [][16]byte{{}, {15: 0xff}, {12: 0x7f, 13: 0xff, 14: 0xff, 15: 0xf0}, {11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xfe}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}}
	lengths := []int{1404, 1432, 2800, MaxPacketSize}
	for n := 0; n <= shortCTR+33; n++ {
		lengths = append(lengths, n)
	}
	for _, key := range []*Key{k, &portable} {
		for _, iv := range ivs {
			for _, n := range lengths {
				want := make([]byte, n)
				for i := range want {
					want[i] = byte(i * 7)
				}
				got := append([]byte(nil), want...)
				cipher.NewCTR(k.k1, iv[:]).XORKeyStream(want, want)
				sc := &aesScratch{ctrIV: iv}
				xorCTR(key, sc, got)
				if !bytes.Equal(got, want) {
					t.Fatalf("assembly %v, iv %x, %d bytes: key stream differs from crypto/cipher's", key.ctr != ctrSchedule{}, iv, n)
				}
			}
		}
	}
}

func TestArmorRoundTripSizes(t *testing.T) {
	k := testKey()
	for _, c := range []Cipher{CipherPoly1305None, CipherPoly1305Salsa2012, CipherAESGMACSIV} {
		for _, n := range []int{0, 1, 15, 16, 17, 63, 64, 65, 1000, 1404, 2772, MaxPacketSize - HeaderSize} {
			p := NewPacket(nil, uint64(n)*0x9e3779b97f4a7c15, 0x0a0b0c0d0e, 0x1112131415, VerbFrame)
			p.SetFragmented(n > 1404)
			for i := range n {
				p = append(p, byte(i*31))
			}
			orig := append(Packet{}, p...)
			Armor(p, k, c)
			if n > 16 && c != CipherPoly1305None && bytes.Equal(p[HeaderSize:], orig[HeaderSize:]) {
				t.Errorf("cipher %d len %d: payload not encrypted", c, n)
			}
			if err := Dearmor(p, k); err != nil {
				t.Fatalf("cipher %d len %d: %v", c, n, err)
			}
			if !bytes.Equal(p[idxVerb:], orig[idxVerb:]) || p.Fragmented() != orig.Fragmented() {
				t.Fatalf("cipher %d len %d: round trip differs", c, n)
			}
		}
	}
	if err := Dearmor(vectorPacket(), testKey()); !errors.Is(err, ErrBadMAC) {
		t.Errorf("unarmored packet accepted: %v", err)
	}
	p := vectorPacket()
	p[idxFlags] = 2 << 3
	if err := Dearmor(p, testKey()); !errors.Is(err, ErrUnsupportedCipher) {
		t.Errorf("cipher 2: %v", err)
	}
}
