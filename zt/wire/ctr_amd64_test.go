//go:build !purego

package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"testing"
)

// TestCTRAssemblyTaken makes sure that TestXorCTR measured the assembly where the CPU has it:
// a schedule that was not expanded would send every body down the portable path unnoticed.
func TestCTRAssemblyTaken(t *testing.T) {
	if !haveCTRAsm {
		t.Skip("no AES-NI and SSSE3 here")
	}
	k := testKey()
	iv := [16]byte{12: 0x12, 15: 0x34}
	if !k.ctr.xor(&iv, make([]byte, 1432)) {
		t.Fatal("the assembly CTR declined a packet-sized body")
	}
	if iv[15] != 0x34+90 || iv[12] != 0x12 {
		t.Errorf("counter after 90 blocks = %x", iv)
	}
}

// TestCTRScheduleKeys compares the assembly with crypto/cipher under many keys: the schedule is
// expanded here, not by crypto/aes, and a mistake in it could show under some keys only.
func TestCTRScheduleKeys(t *testing.T) {
	if !haveCTRAsm {
		t.Skip("no AES-NI and SSSE3 here")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var raw [32]byte
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		block, err := aes.NewCipher(raw[:])
		if err != nil {
			t.Fatal(err)
		}
		s := newCTRSchedule(raw[:])
		iv := [16]byte{3: byte(rng.Uint32()), 12: 0x7f & byte(rng.Uint32())}
		want := make([]byte, 1432)
		cipher.NewCTR(block, iv[:]).XORKeyStream(want, want)
		got := make([]byte, len(want))
		if !s.xor(&iv, got) || !bytes.Equal(got, want) {
			t.Fatalf("key %x: key stream differs from crypto/cipher's", raw)
		}
	}
}
