package netstack

import (
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// tcpFrame is an Ethernet frame with an IPv4 TCP segment (checksums not needed here).
func tcpFrame(seq, ack uint32, flags header.TCPFlags, opts []byte, payload int) []byte {
	tl := header.TCPMinimumSize + len(opts)
	f := make([]byte, ethHeaderLen+header.IPv4MinimumSize+tl+payload)
	f[12], f[13] = 0x08, 0x00
	header.IPv4(f[ethHeaderLen:]).Encode(&header.IPv4Fields{TotalLength: uint16(len(f) - ethHeaderLen), TTL: 64,
		Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src4, DstAddr: dst4})
	t := header.TCP(f[ethHeaderLen+header.IPv4MinimumSize:])
	t.Encode(&header.TCPFields{SrcPort: 80, DstPort: 1000, SeqNum: seq, AckNum: ack, DataOffset: uint8(tl), Flags: flags, WindowSize: 100})
	copy(t[header.TCPMinimumSize:], opts)
	return f
}

// ackStep is a frame given to the delayer and whether it must go at once.
type ackStep struct {
	name  string
	frame []byte
	now   bool
}

func TestAckDelayer(t *testing.T) {
	var mu sync.Mutex
	var late [][]byte
	stats := new(counters)
	d := newAckDelayer(func(f [][]byte) {
		mu.Lock()
		late = append(late, f...)
		mu.Unlock()
	}, stats, 2800)
	defer d.stop()
	sentLate := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(late)
	}
	ack := header.TCPFlagAck
	steps := []struct {
		name  string
		frame []byte
		now   bool // sent at once
	}{
		{"first segment of a connection", tcpFrame(1, 1000, ack, nil, 0), true},
		{"ACK of a small request: held", tcpFrame(1, 1100, ack, nil, 0), false},
		{"a newer ACK replaces it", tcpFrame(1, 1200, ack, nil, 0), false},
		{"the response carries the acknowledgment", tcpFrame(1, 1200, ack|header.TCPFlagPsh, nil, 600), true},
		{"duplicate ACK", tcpFrame(601, 1200, ack, nil, 0), true},
		{"ACK of two full segments", tcpFrame(601, 1200+2*2800, ack, nil, 0), true},
		{"ACK with SACK blocks", tcpFrame(601, 1200+2*2800+10, ack, []byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2}, 0), true},
		{"window update (nothing new acknowledged)", tcpFrame(601, 1200+2*2800+10, ack, nil, 0), true},
		{"an older ACK, overtaken by a segment: dropped", tcpFrame(601, 1200+2*2800, ack, nil, 0), false},
		{"ACK of a small request, held again", tcpFrame(601, 1200+2*2800+20, ack, nil, 0), false},
		{"non-TCP", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x06, 0}, true},
	}
	for _, s := range steps {
		if got := d.admit(s.frame); got != s.now {
			t.Fatalf("%s: sent now %v, want %v", s.name, got, s.now)
		}
	}
	if n := sentLate(); n != 0 {
		t.Fatalf("%d frames sent late before the delay", n)
	}
	if n := stats.acksMerged.Load(); n != 2 {
		t.Errorf("%d ACKs counted as made redundant by a segment, want 2 (the held one the response carried, the older one)", n)
	}
	deadline := time.Now().Add(time.Second)
	for sentLate() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := sentLate(); n != 1 {
		t.Fatalf("%d held ACKs sent after the delay, want 1", n)
	}
	if got := header.TCP(late[0][ethHeaderLen+header.IPv4MinimumSize:]).AckNumber(); got != 1200+2*2800+20 {
		t.Errorf("held ACK acknowledges %d", got)
	}
	if n := stats.acksExpired.Load(); n != 1 {
		t.Errorf("%d held ACKs counted as expired, want 1", n)
	}
	// A connection opened by us: the SYN carries no acknowledgment number (0 here), so the
	// first ACK goes at once whatever its number (here in the upper half of the sequence
	// space, "before" 0), and only then are ACKs compared with it.
	syn := header.TCPFlagSyn
	for _, s := range []ackStep{
		{"SYN", tcpFrame(7, 0, syn, nil, 0), true},
		{"handshake ACK", tcpFrame(8, 0x90000000, ack, nil, 0), true},
		{"ACK of a small response: held", tcpFrame(8, 0x90000010, ack, nil, 0), false},
		{"an older ACK: dropped", tcpFrame(8, 0x90000008, ack, nil, 0), false},
	} {
		s.frame[ethHeaderLen+header.IPv4MinimumSize+1] = 81 // another connection: source port 81
		if got := d.admit(s.frame); got != s.now {
			t.Errorf("%s: sent now %v, want %v", s.name, got, s.now)
		}
	}
	// A new connection on the same ports (the old one's entry outlived it): its SYN starts
	// afresh, and its handshake ACK goes however its number compares with the old ones.
	for _, s := range []ackStep{
		{"SYN of a new connection on the same ports", tcpFrame(100, 0, syn, nil, 0), true},
		{"its handshake ACK", tcpFrame(101, 0x50000000, ack, nil, 0), true}, // "before" the old ones
	} {
		s.frame[ethHeaderLen+header.IPv4MinimumSize+1] = 81
		if got := d.admit(s.frame); got != s.now {
			t.Errorf("%s: sent now %v, want %v", s.name, got, s.now)
		}
	}
	// After a FIN the connection is forgotten: its last ACK goes at once.
	d.admit(tcpFrame(601, 1200+2*2800+20, ack|header.TCPFlagFin, nil, 0))
	if !d.admit(tcpFrame(602, 1200+2*2800+21, ack, nil, 0)) {
		t.Errorf("ACK after FIN held")
	}
}
