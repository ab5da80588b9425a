package ledger

import (
	"os"
	"syscall"
)

// mapSegment maps n bytes of f, shared, for writing: what is copied into
// the mapping is in f's page cache at once, as a write(2) would put it.
func mapSegment(f *os.File, n int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

// unmapSegment undoes mapSegment.
func unmapSegment(m []byte) error { return syscall.Munmap(m) }

// allocSegment extends f from off to end bytes with the blocks
// allocated, so that storing into the mapping below end never needs the
// file system to find room: a full disk fails here, as an error, rather
// than as a SIGBUS on a store into the mapping.
func allocSegment(f *os.File, off, end int64) error {
	return syscall.Fallocate(int(f.Fd()), 0, off, end-off)
}

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14): fault pages in,
// writable, in one system call rather than one fault a page.
const madvPopulateWrite = 23

// prefaultSegment makes the pages of m, a freshly allocated range of a
// mapped segment, ready for stores. A kernel without the advice keeps
// the faults, which are only slower.
func prefaultSegment(m []byte) { syscall.Madvise(m, madvPopulateWrite) }
