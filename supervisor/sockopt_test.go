package supervisor

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

func TestStreamOptionLevels(t *testing.T) {
	for _, tc := range []struct {
		level   int
		v6      bool
		foreign bool
	}{
		{unix.SOL_SOCKET, false, false},
		{unix.IPPROTO_IP, true, false},
		{unix.IPPROTO_TCP, false, false},
		{unix.IPPROTO_IPV6, true, false},
		{unix.IPPROTO_IPV6, false, true},
		{unix.IPPROTO_UDP, false, true},
		{9999, true, true},
	} {
		if got := foreignStreamOption(tc.level, tc.v6); got != tc.foreign {
			t.Errorf("level %d v6 %v: foreign %v, want %v", tc.level, tc.v6, got, tc.foreign)
		}
	}
}

func TestFixedOption(t *testing.T) {
	peercred := []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for _, tc := range []struct {
		level, name int
		want        []byte
	}{
		{unix.SOL_SOCKET, unix.SO_PEERCRED, peercred},
		{unix.SOL_SOCKET, unix.SO_SNDLOWAT, intOpt(1)},
		{unix.SOL_SOCKET, unix.SO_RCVLOWAT, nil},
		{unix.IPPROTO_TCP, unix.SO_PEERCRED, nil},
	} {
		got, ok := fixedOption(tc.level, tc.name)
		if ok != (tc.want != nil) || !bytes.Equal(got, tc.want) {
			t.Errorf("level %d name %d: %x %v, want %x", tc.level, tc.name, got, ok, tc.want)
		}
	}
}
