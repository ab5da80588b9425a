package ledger

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

// copyDir copies the files of src into a new directory, as a crash would
// leave them.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestJournalHoldsWhatTheQueueHolds takes the journal as a crash would
// leave it (records added, none written: the database is locked) and
// replays it twice: into an empty database, where it must record every
// request, and into the database the writer drained into, where it must
// record none a second time.
func TestJournalHoldsWhatTheQueueHolds(t *testing.T) {
	dsn := storetest.SQLite(t)
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := filepath.Join(t.TempDir(), "journal")
	release := lockUsage(t, dsn)
	w, err := NewWriter(context.Background(), db, Options{JournalDir: dir, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := 0; i < n; i++ {
		w.Add(rec(fmt.Sprint("j", i), "m", map[string]string{"team": "a"}, f(0.5), 200))
	}
	crashed := copyDir(t, dir) // what a kill -9 now would leave
	release()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if segs, _, _ := journalSegments(dir); len(segs) != 0 {
		t.Fatalf("journal segments left after every record was written: %v", segs)
	}

	crashed2 := copyDir(t, crashed)
	fresh := openDB(t, storetest.Backends[0])
	w2, err := NewWriter(context.Background(), fresh, Options{JournalDir: crashed})
	if err != nil {
		t.Fatal(err)
	}
	w2.Close(context.Background())
	if rows, rolled := countUsage(t, fresh); rows != n || rolled != n {
		t.Fatalf("replaying the crashed journal recorded %d rows (%d rolled up), want %d", rows, rolled, n)
	}

	w3, err := NewWriter(context.Background(), db, Options{JournalDir: crashed2})
	if err != nil {
		t.Fatal(err)
	}
	w3.Close(context.Background())
	if rows, rolled := countUsage(t, db); rows != n || rolled != n {
		t.Fatalf("replaying a journal the database already had: %d rows (%d rolled up), want %d", rows, rolled, n)
	}
}

// TestJournalEmptiesAsRecordsAreWritten checks the journal stays small:
// once the database has a segment's records, the segment is emptied.
func TestJournalEmptiesAsRecordsAreWritten(t *testing.T) {
	db := openDB(t, storetest.Backends[0])
	dir := filepath.Join(t.TempDir(), "journal")
	w, err := NewWriter(context.Background(), db, Options{JournalDir: dir, BatchSize: 10, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	for i := 0; i < 100; i++ {
		w.Add(rec(fmt.Sprint("e", i), "m", nil, nil, 200))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		segs, _, _ := journalSegments(dir)
		var size int64
		for _, p := range segs {
			if st, err := os.Stat(p); err == nil {
				size += st.Size()
			}
		}
		if w.Stats().Written == 100 && len(segs) == 1 && size == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal not emptied after its records were written: %d segments, %d bytes, %+v", len(segs), size, w.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestJournalLeftByACrashReplaysWhole takes a segment as a kill -9
// would leave it twice: while its records are stored in the mapped part
// (zero bytes follow the last one, up to the room the file was extended
// by), and once they run past the mapping (the rest go in with pwrite).
// Each replays every record once, and nothing is reported torn.
func TestJournalLeftByACrashReplaysWhole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j, err := openJournal(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	r := rec("", "m", map[string]string{"team": "a"}, f(0.5), 200)
	n := 0
	appendUntil := func(size int64) {
		for {
			j.mu.Lock()
			done := j.size >= size
			j.mu.Unlock()
			if done {
				return
			}
			r.RequestID = fmt.Sprint("c", n)
			if _, err := j.append(&r); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	for _, size := range []int64{3*journalGrowBytes + 1, journalMapBytes + journalGrowBytes} {
		appendUntil(size)
		crashed := copyDir(t, dir)
		var log bytes.Buffer
		db := openDB(t, storetest.Backends[0])
		w, err := NewWriter(context.Background(), db, Options{JournalDir: crashed,
			Logger: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		w.Close(context.Background())
		if rows, rolled := countUsage(t, db); rows != n || rolled != n {
			t.Fatalf("replaying the journal of %d bytes recorded %d rows (%d rolled up), want %d", size, rows, rolled, n)
		}
		if strings.Contains(log.String(), "torn") {
			t.Fatalf("a replay of whole records reported torn lines:\n%s", log.String())
		}
	}
}
