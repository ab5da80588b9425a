//go:build !linux

package ledger

import (
	"errors"
	"os"
)

// Elsewhere than Linux the journal writes each record with write(2): it
// has no fallocate to make a store into a mapping safe on a full disk.

func mapSegment(*os.File, int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapSegment([]byte) error { return nil }

func allocSegment(*os.File, int64, int64) error { return errors.ErrUnsupported }

func prefaultSegment([]byte) {}
