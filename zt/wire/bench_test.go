package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"

	//lint:ignore SA1019 ZeroTier's packet MAC is raw Poly1305
	"golang.org/x/crypto/poly1305"

	"github.com/ztnc/ztnc/zt/salsa"
)

// Packet sizes to measure: a FRAME carrying a bare TCP segment (SYN, ACK, FIN), the default
// physical MTU, and the default virtual MTU (one 2800-byte Ethernet payload, which travels as
// a fragmented packet).
var benchSizes = []int{80, 1432, 2800}

var suites = []struct {
	name string
	c    Cipher
}{{"poly1305", CipherPoly1305None}, {"salsa2012-poly1305", CipherPoly1305Salsa2012}, {"aes-gmac-siv", CipherAESGMACSIV}}

func benchPacket(size int) Packet {
	p := NewPacket(make([]byte, 0, size), 0x0102030405060708, 0x0a0b0c0d0e, 0x1112131415, VerbFrame)
	for len(p) < size {
		p = append(p, byte(len(p)))
	}
	return p
}

// BenchmarkArmor measures armoring alone (the send path), per cipher suite and size.
func BenchmarkArmor(b *testing.B) {
	k := testKey()
	for _, s := range suites {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", s.name, size), func(b *testing.B) {
				p := benchPacket(size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					Armor(p, k, s.c)
				}
			})
		}
	}
}

// BenchmarkArmorDearmor measures a packet's round trip: armor, then authenticate and decrypt.
func BenchmarkArmorDearmor(b *testing.B) {
	k := testKey()
	for _, s := range suites {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", s.name, size), func(b *testing.B) {
				p := benchPacket(size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					Armor(p, k, s.c)
					if err := Dearmor(p, k); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkPrimitives measures the building blocks over the same sizes, for comparison.
func BenchmarkPrimitives(b *testing.B) {
	var key [32]byte
	var nonce [8]byte
	block, _ := aes.NewCipher(key[:])
	gcm, _ := cipher.NewGCM(block)
	iv := make([]byte, 16)
	for _, size := range benchSizes {
		buf := make([]byte, size)
		b.Run(fmt.Sprintf("poly1305/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			var tag [16]byte
			for b.Loop() {
				poly1305.Sum(&tag, buf, &key)
			}
		})
		b.Run(fmt.Sprintf("salsa2012-keystream/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				s := salsa.New(&key, &nonce, 12)
				s.XORKeyStream(buf, buf)
			}
		})
		b.Run(fmt.Sprintf("aes256-ctr/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				cipher.NewCTR(block, iv).XORKeyStream(buf, buf)
			}
		})
		b.Run(fmt.Sprintf("gmac/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			var tag [16]byte
			for b.Loop() {
				gcm.Seal(tag[:0], iv[:12], nil, buf)
			}
		})
	}
}
