//go:build race

package netstack

// raceDetector: the race detector slows the stack's receive side more than a sender, so a
// bulk transfer can overflow the link's receive queue (drops that TCP recovers from).
const raceDetector = true
