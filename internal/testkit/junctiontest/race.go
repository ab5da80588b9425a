//go:build race

package junctiontest

const raceEnabled = true
