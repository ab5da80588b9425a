//go:build !race

package junctiontest

const raceEnabled = false
