package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// The journal makes a record durable before the request that made it
// completes. Add appends the record to a file in the data directory
// before it queues it: on Linux by copying it into a shared mapping of
// the file, elsewhere with one write(2); no fsync. Either way, once the
// append returns the record is in the kernel's page cache, so a crash or
// kill -9 of Junction cannot lose it. (A store into a shared mapping
// reaches the same page cache a write(2) does, without the system call:
// about 3 µs less a record. The file is extended, its blocks allocated,
// journalGrowBytes at a time ahead of the stores, so a full disk shows as
// an error there, not as a SIGBUS in a store; past the mapping, or where
// the file system cannot allocate, the journal writes with pwrite(2).)
// Between the last record and the end of the file a segment holds zero
// bytes, which a replay skips. The writer goroutine fsyncs the journal once per flush,
// for all the records appended since (a group commit), so an operating
// system crash or power loss loses at most one flush interval of them.
//
// A record stays in the journal until the database has it (or the spill
// file does): the journal is a run of numbered segment files, and a
// segment is deleted, or the current one truncated, once every record
// appended to it has been written. At start, whatever segments an
// earlier run left are written to the database first; the usage table's
// unique request id makes that replay skip records the database already
// had, so a replay never counts a request twice.

// journalSegmentBytes is the size past which the writer starts a new
// segment rather than wait for the current one to empty.
const journalSegmentBytes = 4 << 20

// journalMapBytes is how much of a segment is mapped: room for a segment
// that grows past journalSegmentBytes before the writer rotates it.
// Records beyond it are written with pwrite(2).
const journalMapBytes = 2 * journalSegmentBytes

// journalGrowBytes is the step by which a mapped segment is extended.
const journalGrowBytes = 64 << 10

// journal is the writer's append-only log of queued records.
type journal struct {
	dir string

	mu      sync.Mutex
	f       *os.File       // the current segment
	seg     uint64         // its number
	size    int64          // bytes of records in it; the next record goes here
	m       []byte         // f mapped (journalMapBytes), or nil: records are written with pwrite
	room    int64          // bytes of f allocated: m takes records up to here
	nomap   bool           // mapping failed once: write every segment with pwrite
	pending map[uint64]int // records appended to a segment and not yet written or spilled

	dirty atomic.Bool // appended since the last fsync
	bufs  sync.Pool
}

// openJournal opens a journal in dir, which must hold no segments (they
// are replayed first). Its first segment is numbered after next.
func openJournal(dir string, next uint64) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger journal: %w", err)
	}
	j := &journal{dir: dir, pending: map[uint64]int{}, bufs: sync.Pool{New: func() any { return new([]byte) }}}
	if err := j.openSegment(next + 1); err != nil {
		return nil, err
	}
	return j, nil
}

// journalSegments lists the segment files in dir, oldest first, and the
// highest segment number among them.
func journalSegments(dir string) (paths []string, last uint64, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("ledger journal: %w", err)
	}
	var segs []uint64
	for _, e := range entries {
		var n uint64
		if name, ok := strings.CutSuffix(e.Name(), ".jsonl"); ok && !e.IsDir() {
			if _, err := fmt.Sscanf(name, "%d", &n); err == nil {
				segs = append(segs, n)
			}
		}
	}
	slices.Sort(segs)
	for _, n := range segs {
		paths = append(paths, segmentPath(dir, n))
	}
	if len(segs) > 0 {
		last = segs[len(segs)-1]
	}
	return paths, last, nil
}

func segmentPath(dir string, n uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d.jsonl", n))
}

// openSegment makes segment n the current one; j.mu is held or j is not
// shared yet.
func (j *journal) openSegment(n uint64) error {
	f, err := os.OpenFile(segmentPath(j.dir, n), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("ledger journal: %w", err)
	}
	var m []byte
	if !j.nomap {
		if m, err = mapSegment(f, journalMapBytes); err != nil {
			j.nomap, m = true, nil
		}
	}
	j.f, j.seg, j.size, j.m, j.room = f, n, 0, m, 0
	return nil
}

// closeSegment unmaps and closes the current segment; j.mu is held.
func (j *journal) closeSegment() error {
	var err error
	if j.m != nil {
		err = unmapSegment(j.m)
		j.m = nil
	}
	return errors.Join(err, j.f.Close())
}

// put appends line to the current segment; j.mu is held. A line that
// fails is not counted in j.size: the next one goes where it began.
func (j *journal) put(line []byte) error {
	end := j.size + int64(len(line))
	if j.m != nil && end <= int64(len(j.m)) {
		if end > j.room {
			room := min(int64(len(j.m)), (end+journalGrowBytes-1)/journalGrowBytes*journalGrowBytes)
			err := allocSegment(j.f, j.room, room)
			switch {
			case err == nil:
				prefaultSegment(j.m[j.room:room])
				j.room = room
			case errors.Is(err, errors.ErrUnsupported):
				// This file system allocates no blocks ahead (fallocate):
				// write with pwrite from now on.
				err = unmapSegment(j.m)
				j.m, j.nomap = nil, true
				if err != nil {
					return err
				}
			default:
				return err
			}
		}
		if j.m != nil {
			copy(j.m[j.size:], line)
			j.size = end
			return nil
		}
	}
	n, err := j.f.WriteAt(line, j.size)
	if err != nil {
		j.room = max(j.room, j.size+int64(n))
		return err
	}
	j.size = end
	j.room = max(j.room, end)
	return nil
}

// append writes r to the current segment and returns that segment's
// number. The record is encoded outside the lock; the lock covers its
// copy into the mapping (or one pwrite).
func (j *journal) append(r *Record) (uint64, error) {
	buf := j.bufs.Get().(*[]byte)
	defer j.bufs.Put(buf)
	line, err := appendRecord((*buf)[:0], r)
	*buf = line
	if err != nil {
		return 0, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return 0, os.ErrClosed
	}
	if err := j.put(line); err != nil {
		return 0, err
	}
	j.pending[j.seg]++
	j.dirty.Store(true)
	return j.seg, nil
}

// sync fsyncs the current segment if anything was appended since the
// last sync. Only the writer goroutine calls it (and rotate), so j.f
// cannot change under it.
func (j *journal) sync() error {
	if !j.dirty.Swap(false) {
		return nil
	}
	return j.f.Sync()
}

// release marks records of the given segments as written (or spilled),
// then deletes segments that have nothing pending, truncates the current
// one when it has nothing pending, or starts a new one when it has grown
// past journalSegmentBytes. Only the writer goroutine calls it.
func (j *journal) release(segs []uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, s := range segs {
		if s != 0 { // 0: a record the journal could not take
			j.pending[s]--
		}
	}
	var errs []error
	for s, n := range j.pending {
		if n == 0 && s != j.seg {
			delete(j.pending, s)
			if err := os.Remove(segmentPath(j.dir, s)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	switch {
	case j.pending[j.seg] == 0 && j.room > 0:
		// Everything in it is in the database: start it over. The
		// truncation drops the mapped pages too; the next record extends
		// the file again before it is stored.
		if err := j.f.Truncate(0); err != nil {
			errs = append(errs, err)
		} else {
			j.size, j.room = 0, 0
		}
	case j.size >= journalSegmentBytes:
		if err := j.f.Sync(); err != nil {
			errs = append(errs, err)
		}
		old, oldMap := j.f, j.m
		if err := j.openSegment(j.seg + 1); err != nil {
			errs = append(errs, err)
		} else {
			if oldMap != nil {
				errs = append(errs, unmapSegment(oldMap))
			}
			old.Close()
		}
	}
	return errors.Join(errs...)
}

// close fsyncs and closes the current segment, and removes the journal's
// files when every record in them was written (or spilled); otherwise
// they stay, for the next start to replay.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.f.Sync()
	if cerr := j.closeSegment(); err == nil {
		err = cerr
	}
	j.f = nil
	for _, n := range j.pending {
		if n > 0 {
			return err
		}
	}
	paths, _, lerr := journalSegments(j.dir)
	for _, p := range paths {
		lerr = errors.Join(lerr, os.Remove(p))
	}
	return errors.Join(err, lerr)
}
