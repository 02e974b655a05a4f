package ztaddr

import (
	"bytes"
	"testing"
)

func FuzzInetAddress(f *testing.F) {
	for _, s := range []string{"\x00", "\x04\xc0\x00\x02\x01\x4e\x1b", "\x06 \x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x27\x0f", "\x03\x00\x02ab", "\x01abcdef"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, n, err := ParseInetAddress(b)
		if err != nil {
			return
		}
		enc := a.Append(nil)
		if n > len(b) || a.Len() != n || !bytes.Equal(enc, b[:n]) {
			t.Fatalf("%x: n=%d Len=%d re-encoded %x", b, n, a.Len(), enc)
		}
		_ = a.String()
		a.Prefix()
		IPScope(a.AddrPort.Addr())
	})
}
