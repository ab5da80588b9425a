package keys

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/platform/store"
)

func TestCreateAuthenticateRevokePersist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	k, plain, err := s.Create(ctx, "search", map[string]string{"team": "search"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, Prefix) || len(plain) < 30 {
		t.Fatalf("plaintext %q", plain)
	}
	var stored int
	db.QueryRow(`SELECT COUNT(*) FROM keys WHERE hash = ? AND hash != ?`, Hash(plain), plain).Scan(&stored)
	if stored != 1 {
		t.Fatal("key must be stored hashed")
	}
	if got, ok := s.Authenticate(plain); !ok || got.ID != k.ID || got.Tags["team"] != "search" {
		t.Fatalf("authenticate: %v %+v", ok, got)
	}
	if _, ok := s.Authenticate(plain + "x"); ok {
		t.Fatal("wrong key accepted")
	}

	// A restart sees the same key.
	db.Close()
	db, _ = store.Open(ctx, path)
	s, _ = Open(ctx, db)
	if _, ok := s.Authenticate(plain); !ok {
		t.Fatal("key lost across restart")
	}
	if err := s.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate(plain); ok {
		t.Fatal("revoked key still works")
	}
	if err := s.Revoke(ctx, "key_missing"); err != ErrNotFound {
		t.Fatalf("revoke unknown: %v", err)
	}
	list, _ := s.List(ctx)
	if len(list) != 1 || list[0].RevokedAt == nil {
		t.Fatalf("list: %+v", list)
	}
}

func TestParseTags(t *testing.T) {
	got, err := ParseTags(" team=search , app=faq")
	if err != nil || got["team"] != "search" || got["app"] != "faq" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"team", "=x", "bad tag=1", "a=b,", "v=" + strings.Repeat("x", 257)} {
		if _, err := ParseTags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Of several bad tags the first by name is named, every time.
	bad := map[string]string{"z!": "1", "m": strings.Repeat("x", 257), "b?": "2", "ok": "3"}
	for range 20 {
		if err := ValidateTags(bad); err == nil || !strings.Contains(err.Error(), `"b?"`) {
			t.Fatalf("ValidateTags: %v, want the error about \"b?\"", err)
		}
	}
}
