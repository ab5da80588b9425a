package ledger

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// spill appends a batch to the spill file and fsyncs it.
func (w *Writer) spill(batch []Record) error {
	w.spillMu.Lock()
	defer w.spillMu.Unlock()
	if w.opt.SpillPath == "" {
		return errors.New("no spill path configured")
	}
	f, err := os.OpenFile(w.opt.SpillPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for _, r := range batch {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// replayBatch is the most records one replay transaction writes.
const replayBatch = 2048

// replayFile writes the records of a JSON-lines file (the spill file or a
// journal segment an earlier run left) to the database, then removes the
// file. A line torn by a crash mid-write is skipped. Request ids are
// unique, so records the database already has are skipped too, and a
// replay cut short is safe to repeat: the file is removed only after
// every record in it was written. It returns how many records it read.
func (w *Writer) replayFile(ctx context.Context, path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var batch []Record
	n, torn := 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := insert(ctx, w.db, batch); err != nil {
			return fmt.Errorf("replay ledger records from %s: %w", path, err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		// A journal segment ends in zero bytes: the room it was extended
		// by and not yet filled (see journal.go).
		line := strings.TrimSpace(strings.TrimRight(sc.Text(), "\x00"))
		if line == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.RequestID == "" {
			torn++ // a line torn by a crash mid-write
			continue
		}
		if batch = append(batch, r); len(batch) == replayBatch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("read ledger records from %s: %w", path, err)
	}
	if err := flush(); err != nil {
		return n, err
	}
	if torn > 0 {
		w.log.Warn("ledger: skipped lines torn by a crash", "file", path, "lines", torn)
	}
	f.Close()
	return n, os.Remove(path)
}

// replay writes what an earlier run left in the spill file and the
// journal, and returns the journal's last segment number.
func (w *Writer) replay(ctx context.Context) (uint64, error) {
	files := []string{}
	if w.opt.SpillPath != "" {
		files = append(files, w.opt.SpillPath)
	}
	var last uint64
	if w.opt.JournalDir != "" {
		segs, l, err := journalSegments(w.opt.JournalDir)
		if err != nil {
			return 0, err
		}
		files, last = append(files, segs...), l
	}
	total := 0
	for _, p := range files {
		n, err := w.replayFile(ctx, p)
		if err != nil {
			return 0, err
		}
		total += n
	}
	if total > 0 {
		w.log.Info("ledger: replayed records an earlier run had not written", "records", total)
	}
	return last, nil
}
