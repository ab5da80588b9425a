//go:build unix

package h1

import "syscall"

// peekEmpty reports whether a socket has nothing to read and is not
// closed: a peek that would block.
func peekEmpty(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
