package store

import (
	"context"
	"path/filepath"
	"testing"
)

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "junction.db")
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO keys(id,name,hash,prefix,created_at) VALUES ('k1','n','h','p',1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	var n, v int
	db.QueryRow(`SELECT COUNT(*) FROM keys`).Scan(&n)
	db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	if n != 1 || v != len(migrations) {
		t.Fatalf("rows=%d version=%d, want 1 and %d", n, v, len(migrations))
	}
}
