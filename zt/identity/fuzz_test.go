package identity

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("../testdata/zt1/identities.txt")
	for _, l := range strings.Fields(string(b))[:2] {
		f.Add(l)
		f.Add(l[:strings.LastIndexByte(l, ':')])
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(id.SecretString())
		if err != nil || back.SecretString() != id.SecretString() {
			t.Fatalf("%q: string round trip: %v", s, err)
		}
	})
}

func FuzzUnmarshal(f *testing.F) {
	b, _ := os.ReadFile("../testdata/zt1/identities.txt")
	id, _ := Parse(strings.Fields(string(b))[0])
	f.Add(id.AppendBinary(nil, false))
	f.Add(id.AppendBinary(nil, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, n, err := Unmarshal(b)
		if err != nil {
			return
		}
		if enc := id.AppendBinary(nil, id.HasPrivate()); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("re-encoded %x, read %x", enc, b[:n])
		}
	})
}
