package process

import (
	"io"
	"os"
)

// DefaultLogLimit is the size at which an instance's output.log is moved
// to output.log.1; with the one older file kept, an instance's logs take at
// most twice this.
const DefaultLogLimit = 64 << 20

// openLog opens the log for a new server process. The server writes to the
// file itself (its stdout and stderr are this file), so its output reaches
// the disk even while no Junction runs, and outlives Junction for the next
// one to adopt.
func openLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
}

// rotateLog keeps path under limit bytes by copying it to path.1 (replacing
// the older copy) and emptying it. Renaming it instead would not work: a
// running server holds the file open and would go on writing into the
// renamed file. Because the server's descriptor appends, its next write
// lands at the start of the emptied file. Lines written during the copy
// can be lost, as with logrotate's copytruncate.
func rotateLog(path string, limit int64) error {
	fi, err := os.Stat(path)
	if err != nil || limit <= 0 || fi.Size() <= limit {
		return nil
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".1.tmp"
	dst, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(dst, src)
	if err := errorsFirst(cerr, dst.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path+".1"); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Truncate(path, 0)
}
