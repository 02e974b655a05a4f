//go:build !race

package zt

const raceSlowdown = 1
