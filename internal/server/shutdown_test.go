package server_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/junctionhq/junction/internal/fakeopenai"
	"github.com/junctionhq/junction/internal/store"
)

// TestShutdownDrainsLedger stops the server right after a burst of
// requests and checks that every one of them reached the database: the
// ledger's flush interval is an hour, so only the drain on shutdown can
// have written them.
func TestShutdownDrainsLedger(t *testing.T) {
	t.Setenv("JUNCTION_TEST_FLUSH", "1h")
	j := start(t, &fakeopenai.Server{}, "")
	const n = 40
	for i := 0; i < n; i++ {
		if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`); status != 200 {
			t.Fatalf("%d %s", status, b)
		}
	}
	j.stop()
	db, err := store.Open(context.Background(), filepath.Join(j.dataDir, "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := count(t, db); got != n {
		t.Fatalf("%d usage records after shutdown, want %d", got, n)
	}
}

func count(t *testing.T, db *sql.DB) int {
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM usage`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
