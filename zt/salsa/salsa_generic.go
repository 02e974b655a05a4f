//go:build !amd64 || purego

package salsa

func xorKeyStream(dst, src []byte, state *[16]uint32, rounds int) {
	xorKeyStreamGeneric(dst, src, state, rounds)
}
