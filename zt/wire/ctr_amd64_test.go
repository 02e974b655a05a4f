//go:build !purego

package wire

import "testing"

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
