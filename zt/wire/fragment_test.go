package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func fragmentedPacket(n int, id uint64) Packet {
	p := NewPacket(nil, id, 0x0a0b0c0d0e, 0x1112131415, VerbFrame)
	for i := range n {
		p = append(p, byte(i*7+int(id)))
	}
	return p
}

func TestFragmentsAndReassembly(t *testing.T) {
	k := testKey()
	for _, size := range []int{100, 1432, 1433, 2800, 4000, 1432 + 6*1416} {
		p := fragmentedPacket(size-HeaderSize, uint64(size))
		p.SetFragmented(len(p) > DefaultPhysicalMTU)
		Armor(p, k, CipherAESGMACSIV)
		var pieces [][]byte
		err := Fragments(p, DefaultPhysicalMTU, func(b []byte) error {
			if len(b) > DefaultPhysicalMTU {
				t.Fatalf("datagram of %d bytes", len(b))
			}
			pieces = append(pieces, append([]byte{}, b...))
			return nil
		})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		want := 1
		if size > DefaultPhysicalMTU {
			want = 1 + (size-DefaultPhysicalMTU+DefaultPhysicalMTU-17)/(DefaultPhysicalMTU-16)
		}
		if len(pieces) != want {
			t.Fatalf("size %d: %d pieces, want %d", size, len(pieces), want)
		}
		if len(pieces) == 1 {
			continue
		}
		for i, f := range pieces[1:] {
			fr := Fragment(f)
			if !IsFragment(f) || fr.Total() != len(pieces) || fr.Number() != i+1 || fr.PacketID() != p.ID() || fr.Destination() != p.Destination() {
				t.Fatalf("fragment %d header %x", i+1, f[:16])
			}
		}
		// Any arrival order, with duplicates, reassembles to the armored packet.
		for trial := range 20 {
			var r Reassembler
			order := rand.Perm(len(pieces))
			order = append(order, order[0])
			var got Packet
			for _, i := range order {
				var q Packet
				var ok bool
				var err error
				if i == 0 {
					q, ok, err = r.AddHead(Packet(pieces[0]))
				} else {
					q, ok, err = r.AddFragment(Fragment(pieces[i]))
				}
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					if got != nil {
						t.Fatalf("trial %d: completed twice", trial)
					}
					got = q
				}
			}
			if !bytes.Equal(got, p) {
				t.Fatalf("size %d trial %d: reassembled %d bytes, want %d", size, trial, len(got), len(p))
			}
			if err := Dearmor(got, k); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestFragmentLimits(t *testing.T) {
	p := fragmentedPacket(MaxPacketSize, 1)
	p.SetFragmented(true)
	if err := Fragments(p, DefaultPhysicalMTU, func([]byte) error { return nil }); !errors.Is(err, ErrTooLarge) {
		t.Errorf("8-piece packet: %v", err)
	}
	q := fragmentedPacket(3000, 2)
	if err := Fragments(q, DefaultPhysicalMTU, func([]byte) error { return nil }); !errors.Is(err, ErrBadFragment) {
		t.Errorf("unflagged head: %v", err)
	}
	var r Reassembler
	frag := func(total, n int) Fragment {
		f := make(Fragment, 20)
		f[13] = 0xff
		f[14] = byte(total<<4 | n)
		return f
	}
	for _, f := range []Fragment{frag(1, 0), frag(8, 1), frag(3, 0), frag(3, 3), frag(7, 7), frag(2, 1)[:16]} {
		if _, _, err := r.AddFragment(f); !errors.Is(err, ErrBadFragment) {
			t.Errorf("fragment %x accepted: %v", f[13:16], err)
		}
	}
	// A fragment disagreeing on the count is refused.
	r.AddFragment(frag(3, 1))
	if _, _, err := r.AddFragment(frag(4, 2)); !errors.Is(err, ErrBadFragment) {
		t.Errorf("inconsistent count: %v", err)
	}
	// The ring forgets the oldest of 33 packets in progress.
	var ring Reassembler
	heads := make([]Packet, ReassemblySlots+1)
	for i := range heads {
		heads[i] = fragmentedPacket(1500, uint64(100+i))
		heads[i].SetFragmented(true)
		ring.AddHead(heads[i][:DefaultPhysicalMTU])
	}
	tail := func(h Packet) Fragment {
		f := Fragment(append(append([]byte{}, h[:13]...), 0xff, 2<<4|1, 0))
		return append(f, h[DefaultPhysicalMTU:]...)
	}
	if _, ok, _ := ring.AddFragment(tail(heads[0])); ok {
		t.Error("oldest packet still in the ring")
	}
	if got, ok, _ := ring.AddFragment(tail(heads[ReassemblySlots])); !ok || !bytes.Equal(got, heads[ReassemblySlots]) {
		t.Error("newest packet not reassembled")
	}
	// Oversized reassembly is refused.
	var big Reassembler
	h := fragmentedPacket(1500, 9)
	h.SetFragmented(true)
	big.AddHead(h)
	var err error
	for n := 1; n < 7; n++ {
		f := Fragment(append(append([]byte{}, h[:13]...), 0xff, byte(7<<4|n), 0))
		_, _, err = big.AddFragment(append(f, make([]byte, 1700)...))
	}
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("11 KB reassembly: %v", err)
	}
}

func TestPacketHeader(t *testing.T) {
	p := NewPacket(make([]byte, 0, 64), 0x1122334455667788, 0x0102030405, 0x0a0b0c0d0e, VerbMulticastGather)
	if len(p) != HeaderSize || p.ID() != 0x1122334455667788 || p.Destination() != 0x0102030405 || p.Source() != 0x0a0b0c0d0e || p.Verb() != VerbMulticastGather {
		t.Fatalf("header %x", []byte(p))
	}
	for range 9 {
		p.IncrementHops()
	}
	p.SetFragmented(true)
	if p.Hops() != 1 || !p.Fragmented() || p.Flags() != 0x41 {
		t.Errorf("flags %02x", p.Flags())
	}
	p.SetVerb(VerbFrame)
	if p.Verb() != VerbFrame || p.Compressed() || VerbFrame.String() != "FRAME" || Verb(0x1f).String() != "VERB_0x1f" {
		t.Error("verb")
	}
	if _, err := AsPacket(make([]byte, 27)); !errors.Is(err, ErrShortPacket) {
		t.Error("short packet accepted")
	}
}

// FragmentPiece gives the same datagrams as Fragments, for zero-copy (iovec) sending, and
// reassembly into a caller's buffer does not allocate.
func TestFragmentPiecesAndReassemblyInto(t *testing.T) {
	p := fragmentedPacket(3000, 77)
	p.SetFragmented(true)
	var want [][]byte
	Fragments(p, DefaultPhysicalMTU, func(d []byte) error { want = append(want, append([]byte{}, d...)); return nil })
	total := FragmentCount(len(p), DefaultPhysicalMTU)
	if total != len(want) || FragmentCount(100, DefaultPhysicalMTU) != 1 || FragmentCount(20000, DefaultPhysicalMTU) != 0 {
		t.Fatalf("FragmentCount = %d, want %d", total, len(want))
	}
	for n := 1; n < total; n++ {
		var hdr [FragmentHeaderSize]byte
		piece := FragmentPiece(&hdr, p, DefaultPhysicalMTU, n, total)
		if got := append(hdr[:], piece...); !bytes.Equal(got, want[n]) {
			t.Fatalf("piece %d differs", n)
		}
	}
	var r Reassembler
	buf := make([]byte, 0, MaxPacketSize)
	reassemble := func() {
		r.AddFragmentInto(buf, Fragment(want[2]))
		r.AddFragmentInto(buf, Fragment(want[1]))
		got, ok, err := r.AddHeadInto(buf, Packet(want[0]))
		if !ok || err != nil || !bytes.Equal(got, p) || &got[0] != &buf[:1][0] {
			t.Fatalf("reassembly into dst: %v %v", ok, err)
		}
	}
	for range ReassemblySlots { // every slot of the ring gets its buffers once
		reassemble()
	}
	if allocs := testing.AllocsPerRun(50, reassemble); allocs != 0 {
		t.Errorf("%.1f allocations per reassembled packet", allocs)
	}
	// In order, head first, as the receive path sees it: the fragments are appended to the
	// head's buffer, which is handed over, and the slot keeps the caller's; the caller's next
	// dst is the packet it got (its receive buffer), so buffers circulate without allocations.
	whole := make([]byte, 0, MaxPacketSize)
	inOrder := func() {
		for i := range want {
			var got Packet
			var ok bool
			var err error
			if i == 0 {
				got, ok, err = r.AddHeadInto(whole[:0], Packet(want[0]))
			} else {
				got, ok, err = r.AddFragmentInto(whole[:0], Fragment(want[i]))
			}
			if err != nil || ok != (i == len(want)-1) {
				t.Fatalf("piece %d: complete %v, %v", i, ok, err)
			}
			if ok {
				if !bytes.Equal(got, p) {
					t.Fatalf("reassembled in order: %d bytes differ from the packet", len(got))
				}
				whole = got
			}
		}
	}
	for range 2 * ReassemblySlots {
		inOrder()
	}
	if allocs := testing.AllocsPerRun(50, inOrder); allocs != 0 {
		t.Errorf("%.1f allocations per packet reassembled in order", allocs)
	}
}

// TestEvenCut: cutting at EvenCut gives the same number of datagrams as at the MTU, none
// larger than the MTU, all the same size but the last (shorter by less than their number),
// and full-size frames (2800 bytes) give two equal datagrams.
func TestEvenCut(t *testing.T) {
	for size := HeaderSize; size <= MaxPacketSize; size += 7 {
		for _, mtu := range []int{1400, 1432, 1472} {
			total := FragmentCount(size, mtu)
			if total == 0 {
				continue
			}
			cut := EvenCut(size, mtu, total)
			if cut > mtu || FragmentCount(size, cut) != total {
				t.Fatalf("size %d mtu %d: cut %d gives %d pieces, want %d", size, mtu, cut, FragmentCount(size, cut), total)
			}
			if total == 1 {
				continue
			}
			last := size - cut - (total-2)*(cut-FragmentHeaderSize) + FragmentHeaderSize
			if last > cut || cut-last >= total {
				t.Fatalf("size %d mtu %d: pieces of %d, last %d", size, mtu, cut, last)
			}
		}
	}
	if size := HeaderSize + FrameHeaderSize + 2800; EvenCut(size, 1432, 2) != (size+FragmentHeaderSize)/2 || (size+FragmentHeaderSize)%2 != 0 {
		t.Errorf("a 2800-byte frame is not cut into two equal datagrams")
	}
}
