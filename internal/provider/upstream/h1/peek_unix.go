//go:build unix

package h1

import "syscall"

// peekEmpty reports whether a socket has nothing to read and is not
// closed: a peek that would block.
func peekEmpty(fd uintptr) bool {
	_, err := peek(fd)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}

// peekReady reports whether a socket has bytes to read now.
func peekReady(fd uintptr) bool {
	n, err := peek(fd)
	return err == nil && n > 0
}

// peek looks at the next byte of a socket without taking it or waiting.
func peek(fd uintptr) (int, error) {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return n, err
}
