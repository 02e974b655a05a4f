package salsa

import (
	"fmt"
	"testing"
)

func BenchmarkXORKeyStream(b *testing.B) {
	for _, rounds := range []int{12, 20} {
		for _, size := range []int{64, 1432, 2800, 65536} {
			b.Run(fmt.Sprintf("%d/%d", rounds, size), func(b *testing.B) {
				buf := make([]byte, size)
				c := New(seq32(), seq8(), rounds)
				b.SetBytes(int64(size))
				for b.Loop() {
					c.XORKeyStream(buf, buf)
				}
			})
		}
	}
}
