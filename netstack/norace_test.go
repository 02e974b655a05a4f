//go:build !race

package netstack

const raceDetector = false
