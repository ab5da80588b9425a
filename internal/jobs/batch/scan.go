package batch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxLine bounds one input line, so that a file with no newlines cannot
// take the memory of a whole file.
const maxLine = 64 << 20

// errStop ends a scan early without an error.
var errStop = errors.New("stop")

// ErrLineTooLong is wrapped by the error of a scan that met a line past
// its limit.
var ErrLineTooLong = errors.New("line too long")

// ScanLines calls fn for each line of r that is not blank, in order,
// trimmed of the whitespace around it: idx counts those lines from 0, n
// is the line number from 1. A line longer than limit bytes ends the scan
// with an error wrapping ErrLineTooLong; fn's error ends it too. The line
// is only valid during the call.
func ScanLines(r io.Reader, limit int, fn func(idx, n int, line []byte) error) error {
	return scan(r, limit, fn)
}

// scan calls fn for each record of a JSONL input in order: idx counts
// records from 0, n is the line number from 1. Blank lines are not
// records; a line longer than limit bytes is an error. The line is only
// valid during the call.
func scan(r io.Reader, limit int, fn func(idx, n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var long []byte
	idx := 0
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
				if len(long) > limit {
					return fmt.Errorf("line %d is longer than %d MB: %w", n, limit>>20, ErrLineTooLong)
				}
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return err
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if ferr := fn(idx, n, t); ferr != nil {
				if ferr == errStop {
					return nil
				}
				return ferr
			}
			idx++
		}
		if err == io.EOF {
			return nil
		}
	}
}
