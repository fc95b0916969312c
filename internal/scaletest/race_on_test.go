//go:build race

package scaletest

const raceEnabled = true
