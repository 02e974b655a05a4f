package wire

import (
	"bytes"
	"crypto/cipher"
	"testing"
)

// checkMessage is the property every payload decoder must have: no panic on any input, and a
// decoded message re-encodes to bytes that decode to the same encoding again.
func checkMessage(t *testing.T, v Verb, b []byte) {
	m, err := ParseMessage(v, b)
	if err != nil {
		return
	}
	enc := m.Append(nil)
	m2, err := ParseMessage(v, enc)
	if err != nil {
		t.Fatalf("%s: re-encoding %x does not decode: %v", v, enc, err)
	}
	if again := m2.Append(nil); !bytes.Equal(again, enc) {
		t.Fatalf("%s: encoding not stable:\n%x\n%x", v, enc, again)
	}
	if ok, isOK := m.(*OKMessage); isOK {
		body, err := ok.Decode()
		if err != nil {
			return
		}
		benc := body.Append(nil)
		ok2 := &OKMessage{InReVerb: ok.InReVerb, Body: benc}
		body2, err := ok2.Decode()
		if err != nil || !bytes.Equal(body2.Append(nil), benc) {
			t.Fatalf("OK(%s) body encoding not stable: %v", ok.InReVerb, err)
		}
	}
}

func fuzzVerb(f *testing.F, v Verb) {
	for _, m := range sampleMessages(f)[v] {
		f.Add(m.Append(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkMessage(t, v, b) })
}

func FuzzHello(f *testing.F)                { fuzzVerb(f, VerbHello) }
func FuzzOK(f *testing.F)                   { fuzzVerb(f, VerbOK) }
func FuzzError(f *testing.F)                { fuzzVerb(f, VerbError) }
func FuzzWhois(f *testing.F)                { fuzzVerb(f, VerbWhois) }
func FuzzRendezvous(f *testing.F)           { fuzzVerb(f, VerbRendezvous) }
func FuzzFrame(f *testing.F)                { fuzzVerb(f, VerbFrame) }
func FuzzExtFrame(f *testing.F)             { fuzzVerb(f, VerbExtFrame) }
func FuzzMulticastLike(f *testing.F)        { fuzzVerb(f, VerbMulticastLike) }
func FuzzNetworkCredentials(f *testing.F)   { fuzzVerb(f, VerbNetworkCredentials) }
func FuzzNetworkConfigRequest(f *testing.F) { fuzzVerb(f, VerbNetworkConfigRequest) }
func FuzzNetworkConfig(f *testing.F)        { fuzzVerb(f, VerbNetworkConfig) }
func FuzzMulticastGather(f *testing.F)      { fuzzVerb(f, VerbMulticastGather) }
func FuzzMulticastFrame(f *testing.F)       { fuzzVerb(f, VerbMulticastFrame) }
func FuzzPushDirectPaths(f *testing.F)      { fuzzVerb(f, VerbPushDirectPaths) }
func FuzzUserMessage(f *testing.F)          { fuzzVerb(f, VerbUserMessage) }

// FuzzPacket runs the receive path on arbitrary datagrams: header, dearmor under every cipher,
// HELLO's field decryption, LZ4, payload decoding. Seeds are valid armored packets, so the
// fuzzer also explores what survives authentication when it mutates only the MAC-free parts.
func FuzzPacket(f *testing.F) {
	k := testKey()
	for v, msgs := range sampleMessages(f) {
		for _, m := range msgs {
			for _, c := range []Cipher{CipherPoly1305None, CipherPoly1305Salsa2012, CipherAESGMACSIV} {
				p := Packet(m.Append(NewPacket(nil, 0x0102030405060708, 1, 2, v)))
				p = Compress(nil, p)
				Armor(p, k, c)
				f.Add([]byte(p))
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := AsPacket(append([]byte{}, b...))
		if err != nil {
			return
		}
		_, _, _ = p.ID(), p.Source(), p.Destination()
		if ParseHelloIdentity(p.Payload()); Dearmor(p, k) != nil {
			return
		}
		if p.Verb() == VerbHello {
			if CryptHello(p, k) != nil {
				return
			}
		}
		q, err := Decompress(nil, p)
		if err != nil {
			return
		}
		if len(q) > MaxPacketSize {
			t.Fatalf("decompressed to %d bytes", len(q))
		}
		checkMessage(t, q.Verb(), q.Payload())
	})
}

// FuzzLZ4 checks that decoding never overruns its limit and that anything decoded
// re-compresses to a block that decodes to the same bytes.
func FuzzLZ4(f *testing.F) {
	f.Add([]byte{0x10, 'a'})
	f.Add(lz4Compress(nil, bytes.Repeat([]byte("zerotier "), 50)))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := lz4Decompress(nil, b, MaxPacketSize)
		if err != nil {
			return
		}
		if len(out) > MaxPacketSize {
			t.Fatalf("%d bytes out", len(out))
		}
		back, err := lz4Decompress(nil, lz4Compress(nil, out), MaxPacketSize)
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("recompression round trip: %v", err)
		}
	})
}

// FuzzFragment feeds a reassembler with datagrams cut from the input; whatever it completes
// must be within the limits.
func FuzzFragment(f *testing.F) {
	p := fragmentedPacket(3000, 5)
	p.SetFragmented(true)
	var seed []byte
	Fragments(p, DefaultPhysicalMTU, func(d []byte) error {
		seed = append(append(seed, byte(len(d)>>8), byte(len(d))), d...)
		return nil
	})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Reassembler
		for len(b) >= 2 {
			n := min(int(b[0])<<8|int(b[1]), len(b)-2)
			d := b[2 : 2+n]
			b = b[2+n:]
			var got Packet
			var ok bool
			switch {
			case IsFragment(d):
				got, ok, _ = r.AddFragment(Fragment(d))
			case len(d) >= HeaderSize && Packet(d).Fragmented():
				got, ok, _ = r.AddHead(Packet(d))
			}
			if ok && (len(got) > MaxPacketSize || len(got) < HeaderSize) {
				t.Fatalf("reassembled %d bytes", len(got))
			}
		}
	})
}

// FuzzCTR compares xorCTR with crypto/cipher's CTR on arbitrary counters and bodies (the
// assembly where the CPU has it, crypto/cipher's own code where a counter would wrap).
func FuzzCTR(f *testing.F) {
	k := testKey()
	f.Add(make([]byte, 16), make([]byte, 1432))
	f.Add(bytes.Repeat([]byte{0xff}, 16), []byte("x"))
	f.Fuzz(func(t *testing.T, iv, body []byte) {
		if len(iv) != 16 {
			return
		}
		want := append([]byte(nil), body...)
		cipher.NewCTR(k.k1, iv).XORKeyStream(want, want)
		sc := &aesScratch{ctrIV: [16]byte(iv)}
		xorCTR(k, sc, body)
		if !bytes.Equal(body, want) {
			t.Fatalf("iv %x, %d bytes: key stream differs from crypto/cipher's", iv, len(body))
		}
	})
}
