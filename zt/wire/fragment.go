package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Fragment layout and the limits zerotier-one 1.14.1 enforces.
const (
	FragmentHeaderSize = 16
	fragmentIndicator  = 0xff
	idxFragIndicator   = 13
	idxFragCounts      = 14
	idxFragHops        = 15
	// MaxFragments is the most pieces (head included) a packet may be cut into.
	MaxFragments = 7
	// ReassemblySlots is how many packets can be reassembled at once; the oldest is dropped.
	ReassemblySlots = 32
)

// Errors from fragment handling.
var (
	ErrBadFragment = errors.New("bad fragment")
	ErrTooLarge    = errors.New("packet too large")
)

// IsFragment reports whether a received datagram is a fragment rather than a packet.
func IsFragment(b []byte) bool {
	return len(b) > FragmentHeaderSize && b[idxFragIndicator] == fragmentIndicator
}

// Fragment is one non-head piece of a fragmented packet: accessors over the datagram.
type Fragment []byte

// PacketID is the (on-wire) ID of the packet this piece belongs to.
func (f Fragment) PacketID() uint64 { return binary.BigEndian.Uint64(f) }

// Destination is the packet's recipient.
func (f Fragment) Destination() ztaddr.Address { return ztaddr.AddressFrom(f[8:]) }

// Total is the number of pieces including the head.
func (f Fragment) Total() int { return int(f[idxFragCounts] >> 4) }

// Number is this piece's position (1 = first after the head).
func (f Fragment) Number() int { return int(f[idxFragCounts] & 0x0f) }

// Hops is how many relays the fragment passed.
func (f Fragment) Hops() int { return int(f[idxFragHops] & maskHops) }

// IncrementHops counts one more relay.
func (f Fragment) IncrementHops() {
	f[idxFragHops] = f[idxFragHops]&^maskHops | (f[idxFragHops]+1)&maskHops
}

// Data is the piece of the packet this fragment carries.
func (f Fragment) Data() []byte { return f[FragmentHeaderSize:] }

// FragmentCount is how many datagrams (head included) a packet of size bytes takes at mtu, or 0
// if it does not fit in MaxFragments (or mtu is too small to fragment).
func FragmentCount(size, mtu int) int {
	if size <= mtu {
		return 1
	}
	if mtu <= FragmentHeaderSize+HeaderSize {
		return 0
	}
	per := mtu - FragmentHeaderSize
	n := 1 + (size-mtu+per-1)/per
	if n > MaxFragments {
		return 0
	}
	return n
}

// EvenCut is where to cut the head of a packet of size bytes that takes total datagrams at
// mtu (FragmentCount) so that all its datagrams are the same size, the last up to total-1
// bytes shorter: the pieces of equal-size packets then form runs of equal-size datagrams,
// which a transport can hand to the kernel as one segmentation-offload send. Receivers
// reassemble fragments of any size, as zerotier-one does.
func EvenCut(size, mtu, total int) int {
	if total <= 1 {
		return size
	}
	return min(mtu, (size+FragmentHeaderSize*(total-1)+total-1)/total)
}

// FragmentPiece returns the header and the slice of p that make up datagram n (1..total-1)
// of p cut at mtu, so that a transport can send header and piece as two iovecs without
// copying. The head (n = 0) is p[:mtu] itself.
func FragmentPiece(hdr *[FragmentHeaderSize]byte, p Packet, mtu, n, total int) []byte {
	copy(hdr[:13], p[:13])
	hdr[idxFragIndicator] = fragmentIndicator
	hdr[idxFragCounts] = byte(total<<4 | n)
	hdr[idxFragHops] = 0
	per := mtu - FragmentHeaderSize
	start := mtu + (n-1)*per
	return p[start:min(len(p), start+per)]
}

// Fragments cuts an armored packet into datagrams of at most mtu bytes and calls emit for each,
// head first. The head must have been flagged with SetFragmented before Armor when
// len(p) > mtu. emit's argument is only valid during the call.
func Fragments(p Packet, mtu int, emit func(datagram []byte) error) error {
	total := FragmentCount(len(p), mtu)
	switch {
	case total == 1:
		return emit(p)
	case total == 0:
		return fmt.Errorf("%w: %d bytes do not fit in %d fragments at MTU %d", ErrTooLarge, len(p), MaxFragments, mtu)
	case !p.Fragmented():
		return fmt.Errorf("%w: head of a %d-byte packet is not flagged fragmented", ErrBadFragment, len(p))
	}
	if err := emit(p[:mtu]); err != nil {
		return err
	}
	buf := fragmentBuffers.Get().(*[FragmentHeaderSize + MaxPacketSize]byte)
	defer fragmentBuffers.Put(buf)
	for n := 1; n < total; n++ {
		piece := FragmentPiece((*[FragmentHeaderSize]byte)(buf[:FragmentHeaderSize]), p, mtu, n, total)
		copy(buf[FragmentHeaderSize:], piece)
		if err := emit(buf[:FragmentHeaderSize+len(piece)]); err != nil {
			return err
		}
	}
	return nil
}

// fragmentBuffers hold the fragments Fragments builds (a local array would escape to the heap
// through emit: 10 KB per fragmented packet).
var fragmentBuffers = sync.Pool{New: func() any { return new([FragmentHeaderSize + MaxPacketSize]byte) }}

// Reassembler collects the pieces of fragmented packets addressed to us, with zerotier-one's
// limits: 2..7 pieces, 32 packets in progress (oldest forgotten), duplicates ignored. It copies
// what it keeps. It is not safe for concurrent use.
type Reassembler struct {
	slots [ReassemblySlots]reassembly
	next  int
}

type reassembly struct {
	id    uint64
	inUse bool
	have  uint16 // bit n = piece n present (bit 0 = head)
	total int    // 0 until a fragment says
	head  []byte
	frags [MaxFragments - 1][]byte
}

func (r *Reassembler) slot(id uint64) *reassembly {
	for i := range r.slots {
		if s := &r.slots[i]; s.inUse && s.id == id {
			return s
		}
	}
	s := &r.slots[r.next]
	r.next = (r.next + 1) % ReassemblySlots
	*s = reassembly{id: id, inUse: true, head: s.head[:0], frags: s.frags}
	for i := range s.frags {
		s.frags[i] = s.frags[i][:0]
	}
	return s
}

// AddHead files the head of a fragmented packet (a packet with the fragmented flag). It
// returns the whole packet, newly allocated, if this completed it.
func (r *Reassembler) AddHead(p Packet) (Packet, bool, error) { return r.AddHeadInto(nil, p) }

// AddFragment files a fragment. It returns the whole packet, newly allocated, if this
// completed it.
func (r *Reassembler) AddFragment(f Fragment) (Packet, bool, error) { return r.AddFragmentInto(nil, f) }

// AddHeadInto is AddHead assembling a completed packet into dst (reusing its capacity).
func (r *Reassembler) AddHeadInto(dst []byte, p Packet) (Packet, bool, error) {
	s := r.slot(p.ID())
	if s.have&1 != 0 {
		return nil, false, nil // duplicate
	}
	s.have |= 1
	if !s.complete() {
		if cap(s.head) < MaxPacketSize {
			// Room for the whole packet: the fragments that complete it are appended here.
			s.head = make([]byte, 0, MaxPacketSize)
		}
		s.head = append(s.head[:0], p...)
		return nil, false, nil
	}
	return r.assemble(dst, s, 0, p)
}

// AddFragmentInto is AddFragment assembling a completed packet into dst (reusing its
// capacity), or into the buffer that holds the head, which then keeps dst for later use.
func (r *Reassembler) AddFragmentInto(dst []byte, f Fragment) (Packet, bool, error) {
	if len(f) <= FragmentHeaderSize {
		return nil, false, fmt.Errorf("%w: %d bytes", ErrBadFragment, len(f))
	}
	total, n := f.Total(), f.Number()
	if total <= 1 || total > MaxFragments || n < 1 || n >= MaxFragments || n >= total {
		return nil, false, fmt.Errorf("%w: piece %d of %d", ErrBadFragment, n, total)
	}
	s := r.slot(f.PacketID())
	if s.have&(1<<n) != 0 {
		return nil, false, nil // duplicate
	}
	if s.total != 0 && s.total != total {
		return nil, false, fmt.Errorf("%w: piece %d says %d pieces, earlier ones %d", ErrBadFragment, n, total, s.total)
	}
	s.total = total
	s.have |= 1 << n
	if !s.complete() {
		s.frags[n-1] = append(s.frags[n-1][:0], f.Data()...)
		return nil, false, nil
	}
	return r.assemble(dst, s, n, f.Data())
}

// complete reports whether every piece is there.
func (s *reassembly) complete() bool {
	return s.total != 0 && bits.OnesCount16(s.have) == s.total && s.have&1 != 0
}

// assemble puts the packet of a complete slot together. piece is the data of piece n, the one
// that completed it, which was not stored: each byte is copied once when the head came first
// (the fragments are appended to the head's buffer, which is handed over, and the slot keeps
// dst's memory instead), twice at most otherwise.
func (r *Reassembler) assemble(dst []byte, s *reassembly, n int, piece []byte) (Packet, bool, error) {
	s.inUse = false
	size := len(piece)
	for i := 1; i < s.total; i++ {
		if i != n {
			size += len(s.frags[i-1])
		}
	}
	if n != 0 {
		size += len(s.head)
	}
	if size > MaxPacketSize {
		return nil, false, fmt.Errorf("%w: reassembled %d bytes", ErrTooLarge, size)
	}
	var p Packet
	if n == 0 {
		p = append(Packet(dst[:0]), piece...)
	} else {
		p, s.head = s.head, dst[:0]
	}
	for i := 1; i < s.total; i++ {
		if i == n {
			p = append(p, piece...)
		} else {
			p = append(p, s.frags[i-1]...)
		}
	}
	return p, true, nil
}
