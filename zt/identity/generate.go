package identity

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"runtime"
	"sync"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Generate creates a new identity, searching for a key whose memory-hard hash qualifies (about
// 15 attempts on average) with one worker per CPU.
func Generate(ctx context.Context) (*Identity, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := make(chan *Identity, 1)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := search(ctx)
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			if id != nil {
				select {
				case found <- id:
				default:
				}
			}
			cancel()
		}()
	}
	wg.Wait()
	select {
	case id := <-found:
		return id, nil
	default:
	}
	select {
	case err := <-errs:
		return nil, err
	default:
		return nil, ctx.Err()
	}
}

// search runs one worker like zerotier-one does: a random key pair, then the X25519 half is
// stepped until the hash qualifies and the address is not reserved.
func search(ctx context.Context) (*Identity, error) {
	mem := hashMemPool.Get().(*[hashMemory]byte)
	defer hashMemPool.Put(mem)
	for {
		var priv PrivateKey
		if _, err := rand.Read(priv[:]); err != nil {
			return nil, err
		}
		var pub PublicKey
		copy(pub[32:], ed25519.NewKeyFromSeed(priv[32:]).Public().(ed25519.PublicKey))
		for {
			if ctx.Err() != nil {
				return nil, nil
			}
			binary.LittleEndian.PutUint64(priv[8:], binary.LittleEndian.Uint64(priv[8:])+1)
			binary.LittleEndian.PutUint64(priv[16:], binary.LittleEndian.Uint64(priv[16:])-1)
			dh, err := ecdh.X25519().NewPrivateKey(priv[:32])
			if err != nil {
				return nil, err
			}
			copy(pub[:32], dh.PublicKey().Bytes())
			d := memoryHardHashWith(&pub, mem)
			if d[0] < hashcashLimit {
				addr := ztaddr.AddressFrom(d[59:])
				if addr.IsReserved() {
					break // new random key
				}
				return New(addr, pub, &priv)
			}
		}
	}
}
