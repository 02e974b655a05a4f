package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	//lint:ignore SA1019 ZeroTier's packet MAC is raw Poly1305
	"golang.org/x/crypto/poly1305"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/salsa"
)

// Cipher is a packet's cipher suite.
type Cipher uint8

// Cipher suites.
const (
	// CipherPoly1305None authenticates without encrypting (used for HELLO).
	CipherPoly1305None Cipher = 0
	// CipherPoly1305Salsa2012 is Salsa20/12 encryption with a Poly1305 MAC.
	CipherPoly1305Salsa2012 Cipher = 1
	// CipherNone is for trusted physical paths only; not supported here.
	CipherNone Cipher = 2
	// CipherAESGMACSIV is AES-256-GMAC-SIV, used by 1.14 towards peers of protocol version ≥ 12.
	CipherAESGMACSIV Cipher = 3
)

// Errors from Dearmor.
var (
	ErrBadMAC            = errors.New("packet authentication failed")
	ErrUnsupportedCipher = errors.New("unsupported cipher suite")
)

// Key is the symmetric key shared with one peer, with the AES keys derived from it expanded. It
// is safe for concurrent use.
type Key struct {
	raw  identity.SharedKey
	gmac cipher.AEAD  // AES-256-GCM under K0, used with empty plaintext as GMAC
	k1   cipher.Block // AES-256 under K1: tag encryption and CTR
	ctr  ctrSchedule  // K1 expanded for the assembly CTR, where there is one (ctr_amd64.go)
}

// NewKey prepares a shared key for armoring.
func NewKey(k identity.SharedKey) *Key {
	key := &Key{raw: k}
	k0, err := aes.NewCipher(kbkdf(&k, '0'))
	if err != nil {
		panic(err) // 32-byte keys cannot fail
	}
	if key.gmac, err = cipher.NewGCM(k0); err != nil {
		panic(err)
	}
	k1 := kbkdf(&k, '1')
	if key.k1, err = aes.NewCipher(k1); err != nil {
		panic(err)
	}
	key.ctr = newCTRSchedule(k1)
	return key
}

// kbkdf derives an AES-256 key from the shared key: HMAC-SHA-384 with a 13-byte label.
func kbkdf(k *identity.SharedKey, label byte) []byte {
	m := hmac.New(sha512.New384, k[:])
	m.Write([]byte{0, 0, 0, 0, 'Z', 'T', label, 0, 0, 0, 0, 1, 0x80})
	return m.Sum(nil)[:32]
}

// Raw is the 48-byte shared key.
func (k *Key) Raw() *identity.SharedKey { return &k.raw }

// Armor authenticates (and for ciphers 1 and 3 encrypts) p in place. p's header must be final
// (packet ID, addresses, fragmented flag, hops 0), its payload compressed if wanted. For
// AES-GMAC-SIV the packet ID changes: read it after Armor for replies.
func Armor(p Packet, k *Key, c Cipher) {
	switch c {
	case CipherAESGMACSIV:
		p[idxFlags] = p[idxFlags]&(flagFragmented|maskHops) | byte(CipherAESGMACSIV)<<3
		armorAES(p, k)
	case CipherPoly1305Salsa2012:
		p[idxFlags] = p[idxFlags]&(flagFragmented|maskHops) | byte(c)<<3 | flagEncryptedLegacy
		armorSalsa(p, k, true)
	default:
		p[idxFlags] = p[idxFlags]&(flagFragmented|maskHops) | byte(CipherPoly1305None)<<3
		armorSalsa(p, k, false)
	}
}

// Dearmor authenticates p with k and decrypts it in place. On error the packet is to be
// dropped (its payload may be garbled).
func Dearmor(p Packet, k *Key) error {
	switch p.Cipher() {
	case CipherPoly1305None, CipherPoly1305Salsa2012:
		return dearmorSalsa(p, k)
	case CipherAESGMACSIV:
		return dearmorAES(p, k)
	}
	return fmt.Errorf("%w %d", ErrUnsupportedCipher, p.Cipher())
}

// salsaForPacket returns the Salsa20/12 stream keyed for this exact packet (its ID, addresses,
// flags without hops, and length are mixed into the key) and the Poly1305 key from its block 0.
func salsaForPacket(p Packet, k *Key) (s salsa.Cipher, macKey [32]byte) {
	var mk [32]byte
	for i := range 18 {
		mk[i] = k.raw[i] ^ p[i]
	}
	mk[18] = k.raw[18] ^ p[idxFlags]&^maskHops
	mk[19] = k.raw[19] ^ byte(len(p))
	mk[20] = k.raw[20] ^ byte(len(p)>>8)
	copy(mk[21:], k.raw[21:32])
	s = salsa.New(&mk, (*[8]byte)(p[idxID:idxID+8]), 12)
	var block0 [salsa.BlockSize]byte
	s.KeyStream(block0[:])
	copy(macKey[:], block0[:32])
	return s, macKey
}

func armorSalsa(p Packet, k *Key, encrypt bool) {
	s, macKey := salsaForPacket(p, k)
	body := p[idxVerb:]
	if encrypt {
		s.XORKeyStream(body, body)
	}
	var tag [16]byte
	poly1305.Sum(&tag, body, &macKey)
	copy(p[idxMAC:idxVerb], tag[:8])
}

func dearmorSalsa(p Packet, k *Key) error {
	s, macKey := salsaForPacket(p, k)
	body := p[idxVerb:]
	var tag [16]byte
	poly1305.Sum(&tag, body, &macKey)
	if subtle.ConstantTimeCompare(tag[:8], p[idxMAC:idxVerb]) != 1 {
		return ErrBadMAC
	}
	if p.Cipher() == CipherPoly1305Salsa2012 {
		s.XORKeyStream(body, body)
	}
	return nil
}

// aesScratch holds the small buffers of one AES-GMAC-SIV operation. They would escape to the
// heap through the cipher interfaces (five allocations per packet), so they are pooled.
type aesScratch struct {
	block, ctrIV, aad, saved, tag, stream [16]byte
	nonce                                 [12]byte
}

// shortCTR is the longest body that AES-GMAC-SIV encrypts one AES block at a time where there
// is no assembly CTR (ctr_amd64.go). crypto/cipher.NewCTR allocates 512 bytes per call (a
// copy of the key schedule), a third of what a member allocates per TCP connection, since
// most of a connection's packets are short segments; past ~200 bytes its eight-block assembly
// is faster than single blocks (BenchmarkArmorDearmor/aes-gmac-siv at 80 and 1432 bytes).
const shortCTR = 256

// xorCTR XORs b with the AES-CTR key stream of K1 from sc.ctrIV, a 128-bit big-endian counter
// as crypto/cipher's CTR counts (sc.ctrIV is used up).
func xorCTR(k *Key, sc *aesScratch, b []byte) {
	if k.ctr.xor(&sc.ctrIV, b) {
		return
	}
	k1 := k.k1
	if len(b) > shortCTR {
		cipher.NewCTR(k1, sc.ctrIV[:]).XORKeyStream(b, b)
		return
	}
	for len(b) > 0 {
		k1.Encrypt(sc.stream[:], sc.ctrIV[:])
		b = b[subtle.XORBytes(b, b, sc.stream[:]):]
		for i := len(sc.ctrIV) - 1; i >= 0; i-- {
			sc.ctrIV[i]++
			if sc.ctrIV[i] != 0 {
				break
			}
		}
	}
}

var aesScratchPool = sync.Pool{New: func() any { return new(aesScratch) }}

// gmacTag computes GMAC under K0 with nonce iv ‖ 0000 over destination, source and flags
// (without hops), 5 zero bytes, then the plaintext from the verb byte on. The 16 bytes before
// the verb are borrowed to lay that out contiguously and restored afterwards.
func gmacTag(p Packet, k *Key, iv []byte, sc *aesScratch) (t8 [8]byte) {
	copy(sc.saved[:], p[idxVerb-16:idxVerb])
	sc.aad = [16]byte{}
	copy(sc.aad[:11], p[idxDest:idxMAC])
	sc.aad[10] &^= maskHops
	copy(p[idxVerb-16:idxVerb], sc.aad[:])
	copy(sc.nonce[:8], iv)
	tag := k.gmac.Seal(sc.tag[:0], sc.nonce[:], nil, p[idxVerb-16:])
	copy(p[idxVerb-16:idxVerb], sc.saved[:])
	for i := range t8 {
		t8[i] = tag[i] ^ tag[i+8]
	}
	return t8
}

func armorAES(p Packet, k *Key) {
	sc := aesScratchPool.Get().(*aesScratch)
	defer aesScratchPool.Put(sc)
	copy(sc.block[:8], p[idxID:idxID+8])
	t8 := gmacTag(p, k, sc.block[:8], sc)
	copy(sc.block[8:], t8[:])
	k.k1.Encrypt(sc.block[:], sc.block[:])
	sc.ctrIV = sc.block
	sc.ctrIV[12] &= 0x7f
	xorCTR(k, sc, p[idxVerb:])
	copy(p[idxID:idxID+8], sc.block[:8])
	copy(p[idxMAC:idxVerb], sc.block[8:])
}

func dearmorAES(p Packet, k *Key) error {
	sc := aesScratchPool.Get().(*aesScratch)
	defer aesScratchPool.Put(sc)
	copy(sc.block[:8], p[idxID:idxID+8])
	copy(sc.block[8:], p[idxMAC:idxVerb])
	sc.ctrIV = sc.block
	sc.ctrIV[12] &= 0x7f
	xorCTR(k, sc, p[idxVerb:])
	k.k1.Decrypt(sc.block[:], sc.block[:])
	t8 := gmacTag(p, k, sc.block[:8], sc)
	if subtle.ConstantTimeCompare(t8[:], sc.block[8:]) != 1 {
		return ErrBadMAC
	}
	return nil
}

// CryptField XORs p[start:] with Salsa20/12 keyed by the raw (unmangled) shared key, nonce =
// packet ID with the low 3 bits cleared. HELLO uses it to hide its moon list; applying it twice
// restores the bytes.
func CryptField(p Packet, k *Key, start int) {
	var nonce [8]byte
	copy(nonce[:], p[idxID:idxID+8])
	nonce[7] &= 0xf8
	s := salsa.New((*[32]byte)(k.raw[:32]), &nonce, 12)
	s.XORKeyStream(p[start:], p[start:])
}
