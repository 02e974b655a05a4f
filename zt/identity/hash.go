package identity

import (
	"crypto/sha512"
	"encoding/binary"
	"sync"

	"github.com/ztnc/ztnc/zt/salsa"
)

// hashMemory is the size of the memory-hard hash's scratch table.
const hashMemory = 2 << 20

// hashcashLimit: an identity is valid only if the first byte of its hash is below this.
const hashcashLimit = 17

var hashMemPool = sync.Pool{New: func() any { return new([hashMemory]byte) }}

// memoryHardHash computes the digest that both proves the work behind an identity and yields
// its address (bytes 59..63). It costs 2 MiB and ~160k Salsa20/20 blocks.
func memoryHardHash(pub *PublicKey) [64]byte {
	mem := hashMemPool.Get().(*[hashMemory]byte)
	defer hashMemPool.Put(mem)
	return memoryHardHashWith(pub, mem)
}

func memoryHardHashWith(pub *PublicKey, mem *[hashMemory]byte) [64]byte {
	d := sha512.Sum512(pub[:])
	s := salsa.New((*[32]byte)(d[0:32]), (*[8]byte)(d[32:40]), 20)

	// Slot i = slot i-1 XOR keystream block i: generate the keystream in one pass (the stream
	// is independent of the table), then chain it.
	s.KeyStream(mem[:])
	for i := salsa.BlockSize; i < hashMemory; i += 8 {
		binary.LittleEndian.PutUint64(mem[i:], binary.LittleEndian.Uint64(mem[i:])^binary.LittleEndian.Uint64(mem[i-salsa.BlockSize:]))
	}

	// Walk the table as pairs of big-endian words: the first picks a digest word, the second a
	// table word; swap them, then mix the next keystream block into the digest.
	var ks [64 * salsa.BlockSize]byte
	ksOff := len(ks)
	for j := 0; j < hashMemory; j += 16 {
		idx1 := int(binary.BigEndian.Uint64(mem[j:]) % 8)
		idx2 := int(binary.BigEndian.Uint64(mem[j+8:])%(hashMemory/8)) * 8
		t := binary.LittleEndian.Uint64(mem[idx2:])
		binary.LittleEndian.PutUint64(mem[idx2:], binary.LittleEndian.Uint64(d[idx1*8:]))
		binary.LittleEndian.PutUint64(d[idx1*8:], t)
		if ksOff == len(ks) {
			s.KeyStream(ks[:])
			ksOff = 0
		}
		for k := 0; k < 64; k += 8 {
			binary.LittleEndian.PutUint64(d[k:], binary.LittleEndian.Uint64(d[k:])^binary.LittleEndian.Uint64(ks[ksOff+k:]))
		}
		ksOff += salsa.BlockSize
	}
	return d
}
