//go:build !unix

package h1

// peekEmpty and peekReady cannot look without waiting here: a closed
// connection shows when it is used, and a body's end is not drained.
func peekEmpty(uintptr) bool { return true }

func peekReady(uintptr) bool { return false }
