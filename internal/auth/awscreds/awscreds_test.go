package awscreds

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/platform/store"
)

func TestCreateLookupRevokePersist(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "master.key")
	db, err := store.Open(ctx, filepath.Join(dir, "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO keys(id,name,hash,prefix,created_at) VALUES ('key_1','app','h','p',1)`); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, db, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keyPath); !os.IsNotExist(err) {
		t.Fatal("the master key was made before any credential needed it")
	}
	c, plain, err := s.Create(ctx, "key_1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.AccessKeyID, Prefix) || len(c.AccessKeyID) != 20 || len(plain) != 40 {
		t.Fatalf("issued %q / %d-character secret, want %s... of 20 and 40 characters", c.AccessKeyID, len(plain), Prefix)
	}
	if got, ok := s.SecretAccessKey(c.AccessKeyID); !ok || got != plain {
		t.Fatal("the new credential does not look up")
	}
	if owner, _ := s.Owner(c.AccessKeyID); owner != "key_1" {
		t.Fatalf("owner %q", owner)
	}
	var sealed []byte
	db.QueryRow(`SELECT secret_ciphertext FROM aws_credentials`).Scan(&sealed)
	if len(sealed) == 0 || bytes.Contains(sealed, []byte(plain)) {
		t.Fatal("the database holds the secret in plaintext")
	}

	// Reopening decrypts the stored secret with the same master key.
	s2, err := Open(ctx, db, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s2.SecretAccessKey(c.AccessKeyID); !ok || got != plain {
		t.Fatal("the credential did not survive a restart")
	}
	c2, _, _ := s2.Create(ctx, "key_1")
	list, err := s2.List(ctx, "key_1")
	if err != nil || len(list) != 2 || list[0].AccessKeyID != c.AccessKeyID {
		t.Fatalf("list %v, %v", list, err)
	}

	if err := s2.Revoke(ctx, c.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s2.SecretAccessKey(c.AccessKeyID); ok {
		t.Fatal("a revoked credential still looks up")
	}
	if _, ok := s2.SecretAccessKey(c2.AccessKeyID); !ok {
		t.Fatal("revoking one credential revoked another")
	}
	if err := s2.Revoke(ctx, c.AccessKeyID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if err := s2.Revoke(ctx, "JKAKNOPE"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	list, _ = s2.List(ctx, "key_1")
	if list[0].RevokedAt == nil || list[1].RevokedAt != nil {
		t.Fatalf("list after revoke: %+v %+v", list[0], list[1])
	}
	s3, _ := Open(ctx, db, keyPath)
	if _, ok := s3.SecretAccessKey(c.AccessKeyID); ok {
		t.Fatal("a revoked credential came back after a restart")
	}

	// Without its master key, stored credentials are an error, not a
	// silent loss.
	os.Remove(keyPath)
	if _, err := Open(ctx, db, keyPath); err == nil || !strings.Contains(err.Error(), "cannot be decrypted") {
		t.Fatalf("open without the master key: %v", err)
	}
}
