package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

// lockUsage takes a write lock on the usage table from a connection of
// its own, as another process holding the database would, and returns
// the function that releases it.
func lockUsage(t *testing.T, dsn string) (release func()) {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lock := []string{"BEGIN IMMEDIATE"}
	if store.DialectOf(db) == store.Postgres {
		lock = []string{"BEGIN", "LOCK TABLE usage IN EXCLUSIVE MODE"}
	}
	for _, q := range lock {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

// countUsage counts the rows of the usage table and of the hourly
// roll-up's request count; both must agree with what was recorded.
func countUsage(t *testing.T, db *sql.DB) (rows, rolled int) {
	t.Helper()
	if err := db.QueryRow(`SELECT COUNT(*) FROM usage`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COALESCE(SUM(requests), 0) FROM usage_hourly`).Scan(&rolled); err != nil {
		t.Fatal(err)
	}
	return rows, rolled
}

// TestCloseUnderLockSpillsEverything shuts the writer down while another
// connection holds a write lock on the usage table: Close gives up on
// the database at its deadline and must spill every queued record, and
// the next start must record each of them exactly once.
func TestCloseUnderLockSpillsEverything(t *testing.T) {
	eachBackend(t, testCloseUnderLockSpillsEverything)
}

func testCloseUnderLockSpillsEverything(t *testing.T, b storetest.Backend) {
	dsn := b.DSN(t)
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	spill := filepath.Join(t.TempDir(), "spill.jsonl")
	release := lockUsage(t, dsn)
	w, err := NewWriter(context.Background(), db, Options{SpillPath: spill, BatchSize: 50, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := 0; i < n; i++ {
		w.Add(rec(fmt.Sprint("locked-", i), "m", nil, f(0.001), 200))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err == nil {
		t.Fatal("Close reported a full drain while the database was locked")
	}
	if s := w.Stats(); s.Spilled+s.Written != n || s.Queued != 0 {
		t.Fatalf("after a shutdown under lock: %+v, want all %d written or spilled", s, n)
	}
	release()
	w2, err := NewWriter(context.Background(), db, Options{SpillPath: spill})
	if err != nil {
		t.Fatal(err)
	}
	w2.Close(context.Background())
	if rows, rolled := countUsage(t, db); rows != n || rolled != n {
		t.Fatalf("recorded %d rows (%d in the roll-up) after the restart, want %d", rows, rolled, n)
	}
}

// TestFullQueueWaits fills a one-record queue while the database is
// locked: Add must wait for room (and count the wait), not drop.
func TestFullQueueWaits(t *testing.T) {
	dsn := storetest.SQLite(t)
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	release := lockUsage(t, dsn)
	w, err := NewWriter(context.Background(), db, Options{QueueSize: 1, BatchSize: 1, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	added := make(chan int, n)
	go func() {
		for i := 0; i < n; i++ {
			w.Add(rec(fmt.Sprint("q", i), "m", nil, nil, 200))
			added <- i
		}
		close(added)
	}()
	// The writer holds one record (its insert waits on the lock) and the
	// queue one more; the third Add must wait.
	deadline := time.Now().Add(30 * time.Second)
	for w.Stats().QueueFullWaits == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no Add waited for room: %+v", w.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if len(added) == n {
		t.Fatal("every Add returned while the queue was full")
	}
	release()
	for range added {
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rows, _ := countUsage(t, db); rows != n {
		t.Fatalf("%d rows, want %d: a record was dropped at a full queue", rows, n)
	}
}

// TestReplaySkipsTornLine replays a spill file whose last line a crash
// cut mid-write: the whole lines are recorded, the torn one skipped, and
// the file removed.
func TestReplaySkipsTornLine(t *testing.T) {
	db := openDB(t, storetest.Backends[0])
	spill := filepath.Join(t.TempDir(), "spill.jsonl")
	w, err := NewWriter(context.Background(), db, Options{SpillPath: filepath.Join(t.TempDir(), "first.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	w.opt.SpillPath = spill
	if err := w.spill([]Record{rec("whole-1", "m", nil, f(1), 200), rec("whole-2", "m", nil, f(1), 200)}); err != nil {
		t.Fatal(err)
	}
	w.Close(context.Background())
	torn := `{"time":"2026-01-01T00:00:00Z","request_id":"torn","key_id":"key_1","inp`
	fh, err := os.OpenFile(spill, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(torn)
	fh.Close()
	w2, err := NewWriter(context.Background(), db, Options{SpillPath: spill})
	if err != nil {
		t.Fatalf("a torn last line stopped the replay: %v", err)
	}
	w2.Close(context.Background())
	recs, _ := Records(context.Background(), db, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), 10)
	if len(recs) != 2 {
		t.Fatalf("replayed %d records, want the 2 whole ones", len(recs))
	}
	if _, err := os.Stat(spill); !os.IsNotExist(err) {
		t.Fatal("the spill file was kept after a replay that wrote everything")
	}
}

// TestFailedReplayKeepsRecords replays a spill file into a database that
// refuses it: the writer must not start, the file must stay, and a later
// replay (after the first one wrote part of it) records each request
// exactly once.
func TestFailedReplayKeepsRecords(t *testing.T) {
	db := openDB(t, storetest.Backends[0])
	spill := filepath.Join(t.TempDir(), "spill.jsonl")
	var lines []string
	for i := 0; i < 10; i++ {
		lines = append(lines, fmt.Sprintf(`{"time":%q,"request_id":"r%d","key_id":"k","status":200,"input_tokens":1}`,
			time.Now().Format(time.RFC3339Nano), i))
	}
	os.WriteFile(spill, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	// Half of them are already recorded, as if a replay had been cut short.
	if err := insert(context.Background(), db, []Record{{Time: time.Now(), RequestID: "r0"}, {Time: time.Now(), RequestID: "r1"},
		{Time: time.Now(), RequestID: "r2"}, {Time: time.Now(), RequestID: "r3"}, {Time: time.Now(), RequestID: "r4"}}); err != nil {
		t.Fatal(err)
	}
	broken := openDB(t, storetest.Backends[0])
	broken.Close()
	if _, err := NewWriter(context.Background(), broken, Options{SpillPath: spill}); err == nil {
		t.Fatal("the writer started although its replay failed")
	}
	if b, err := os.ReadFile(spill); err != nil || strings.Count(string(b), "\n") != 10 {
		t.Fatalf("the spill file did not survive a failed replay: %v", err)
	}
	w, err := NewWriter(context.Background(), db, Options{SpillPath: spill})
	if err != nil {
		t.Fatal(err)
	}
	w.Close(context.Background())
	if rows, rolled := countUsage(t, db); rows != 10 || rolled != 10 {
		t.Fatalf("%d rows (%d in the roll-up) after the second replay, want 10", rows, rolled)
	}
}
