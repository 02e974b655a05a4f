package salsa

func xorBlocks(dst, src []byte, state *[16]uint32, rounds int) {
	xorBlocksGeneric(dst, src, state, rounds)
}
