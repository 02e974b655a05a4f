package netstack

import (
	"os"
	"testing"
	"time"
)

func TestCloseLater(t *testing.T) {
	var c closer
	var ends []*os.File
	for range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		c.closeLater(w)
		ends = append(ends, r)
	}
	// Each write end closes within closeDelay: its read end then reads end of file.
	for i, r := range ends {
		r.SetReadDeadline(time.Now().Add(10 * closeDelay))
		if n, err := r.Read(make([]byte, 1)); n != 0 || err == nil || err.Error() != "EOF" {
			t.Fatalf("pipe %d: read %d, %v; want end of file", i, n, err)
		}
	}
	// The closer starts again after a batch.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c.closeLater(w)
	r.SetReadDeadline(time.Now().Add(10 * closeDelay))
	if n, err := r.Read(make([]byte, 1)); n != 0 || err == nil || err.Error() != "EOF" {
		t.Fatalf("second batch: read %d, %v; want end of file", n, err)
	}
}
