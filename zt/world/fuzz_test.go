package world

import (
	"bytes"
	"os"
	"testing"
)

func FuzzWorld(f *testing.F) {
	f.Add(EarthPlanet)
	lab, _ := os.ReadFile("../testdata/zt1/lab-planet.bin")
	f.Add(lab)
	f.Fuzz(func(t *testing.T, b []byte) {
		w, n, err := Parse(b)
		if err != nil {
			return
		}
		enc := w.Bytes()
		if n > len(b) || len(enc) > MaxSerializedLength+65536 {
			t.Fatalf("n=%d len=%d", n, len(enc))
		}
		w2, n2, err := Parse(enc)
		if err != nil || n2 != len(enc) || !bytes.Equal(w2.Bytes(), enc) {
			t.Fatalf("re-encoding not stable: %v", err)
		}
		w.Verify(&w.UpdatesMustBeSignedBy)
	})
}
