//go:build race

package zt

// The race detector slows identity checks (memory-hard hashing) about 25-fold.
const raceSlowdown = 6
