package netstack

import (
	"encoding/binary"
	"testing"
)

// TestHub checks the switch's delivery rules, which follow ZeroTier's: learned unicast,
// flooding of unknown unicast and of broadcast, multicast and ARP only to subscribers.
func TestHub(t *testing.T) {
	hub := NewHub()
	type got struct {
		dst [6]byte
		typ uint16
	}
	ports := make([]*HubPort, 4)
	recv := make([][]got, 4)
	for i := range ports {
		ports[i] = hub.NewPort(testMAC(byte(i+1)), 1500)
		defer ports[i].Close()
		ports[i].SetReceiver(func(dst, _ [6]byte, typ uint16, _ []byte) { recv[i] = append(recv[i], got{dst, typ}) })
	}
	arpRequest := func(target [4]byte) []byte {
		p := []byte{0, 1, 8, 0, 6, 4, 0, 1}
		p = append(p, make([]byte, 20)...)
		copy(p[24:28], target[:])
		return p
	}
	ip := [4]byte{192, 0, 2, 3}
	ports[2].Subscribe(broadcastMAC, binary.BigEndian.Uint32(ip[:]))
	group := [6]byte{0x01, 0, 0x5e, 1, 2, 3}
	ports[3].Subscribe(group, 0)
	for _, tc := range []struct {
		name    string
		from    int
		dst     [6]byte
		typ     uint16
		payload []byte
		want    []int // ports that receive it
	}{
		{"unknown unicast floods", 0, testMAC(9), 0x0800, nil, []int{1, 2, 3}},
		{"learned unicast", 1, testMAC(1), 0x0800, nil, []int{0}},
		{"broadcast floods", 0, broadcastMAC, 0x0800, nil, []int{1, 2, 3}},
		{"ARP to the subscriber of its address", 0, broadcastMAC, 0x0806, arpRequest(ip), []int{2}},
		{"ARP for an unknown address reaches nobody", 0, broadcastMAC, 0x0806, arpRequest([4]byte{192, 0, 2, 99}), nil},
		{"multicast to subscribers", 0, group, 0x0800, nil, []int{3}},
		{"multicast unsubscribed", 0, [6]byte{0x01, 0, 0x5e, 9, 9, 9}, 0x0800, nil, nil},
	} {
		for i := range recv {
			recv[i] = nil
		}
		if err := ports[tc.from].WriteFrame(tc.dst, testMAC(byte(tc.from+1)), tc.typ, tc.payload); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i := range ports {
			want := false
			for _, w := range tc.want {
				want = want || w == i
			}
			if (len(recv[i]) == 1) != want || len(recv[i]) > 1 {
				t.Errorf("%s: port %d got %d frames, want %v", tc.name, i, len(recv[i]), want)
			}
		}
	}
	if err := ports[0].WriteFrame(testMAC(2), testMAC(1), 0x0800, make([]byte, 1501)); err == nil {
		t.Error("oversize frame accepted")
	}
	ports[3].Close()
	if err := ports[3].WriteFrame(testMAC(2), testMAC(4), 0x0800, nil); err != ErrPortClosed {
		t.Errorf("write on closed port: %v", err)
	}
}
