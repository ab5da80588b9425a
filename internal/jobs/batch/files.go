package batch

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File is a file uploaded through the Files API, or written by a job.
type File struct {
	ID        string
	KeyID     string
	Filename  string
	Purpose   string
	Bytes     int64
	CreatedAt time.Time
	path      string
}

// Files keeps uploaded files: their bytes in a directory, one file each,
// and what is known of them in batch_files. A key sees its own files.
type Files struct {
	db  *sql.DB
	dir string
}

// NewFiles returns the file store over db, keeping bytes under dir.
func NewFiles(db *sql.DB, dir string) (*Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("batch files: %w", err)
	}
	return &Files{db: db, dir: dir}, nil
}

// NewID returns prefix followed by 24 random hex digits.
func NewID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// ErrTooLarge is returned when an upload passes its size limit.
var ErrTooLarge = errors.New("file too large")

// Create stores what r holds, up to limit bytes, as a new file of
// keyID's. The bytes stream to disk; nothing holds them whole.
func (f *Files) Create(ctx context.Context, keyID, filename, purpose string, r io.Reader, limit int64) (*File, error) {
	s, err := f.Stage(r, limit)
	if err != nil {
		return nil, err
	}
	return f.Commit(ctx, s, keyID, filename, purpose)
}

// temp makes a file to write a new file's bytes into, for register.
func (f *Files) temp() (*os.File, error) { return os.CreateTemp(f.dir, ".upload-*") }

// register closes tmp and makes it file id. Registering the same id again
// replaces the bytes and keeps the record, so a job that finishes twice
// (after a crash) leaves one file.
func (f *Files) register(ctx context.Context, tmp *os.File, id, keyID, filename, purpose string) (*File, error) {
	fi, err := tmp.Stat()
	if err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	path := filepath.Join(f.dir, id)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, err
	}
	file := &File{ID: id, KeyID: keyID, Filename: filename, Purpose: purpose, Bytes: fi.Size(), CreatedAt: time.Now(), path: path}
	_, err = f.db.ExecContext(ctx, `INSERT INTO batch_files(id, key_id, filename, purpose, bytes, path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes`,
		file.ID, file.KeyID, file.Filename, file.Purpose, file.Bytes, id, file.CreatedAt.Unix())
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return file, nil
}

// Get returns keyID's file id; ErrNotFound when there is none (or it is
// another key's). An empty keyID sees every file.
func (f *Files) Get(ctx context.Context, keyID, id string) (*File, error) {
	var file File
	var created int64
	err := f.db.QueryRowContext(ctx, `SELECT id, key_id, filename, purpose, bytes, path, created_at FROM batch_files WHERE id = ?`, id).
		Scan(&file.ID, &file.KeyID, &file.Filename, &file.Purpose, &file.Bytes, &file.path, &created)
	if errors.Is(err, sql.ErrNoRows) || err == nil && keyID != "" && file.KeyID != keyID {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	file.CreatedAt = time.Unix(created, 0)
	file.path = filepath.Join(f.dir, filepath.Base(file.path))
	return &file, nil
}

// Open opens keyID's file id for reading.
func (f *Files) Open(ctx context.Context, keyID, id string) (*File, io.ReadCloser, error) {
	file, err := f.Get(ctx, keyID, id)
	if err != nil {
		return nil, nil, err
	}
	r, err := os.Open(file.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, ErrNotFound
	}
	return file, r, err
}

// List returns keyID's files newest first (purpose, when set, selects),
// after the file with id after, and whether there are more.
func (f *Files) List(ctx context.Context, keyID, purpose, after string, limit int) ([]*File, bool, error) {
	if limit <= 0 {
		limit = 10000
	}
	where, args := []string{"key_id = ?"}, []any{keyID}
	if purpose != "" {
		where, args = append(where, "purpose = ?"), append(args, purpose)
	}
	if after != "" {
		a, err := f.Get(ctx, keyID, after)
		if err != nil {
			return nil, false, err
		}
		where = append(where, "(created_at < ? OR (created_at = ? AND id < ?))")
		args = append(args, a.CreatedAt.Unix(), a.CreatedAt.Unix(), a.ID)
	}
	rows, err := f.db.QueryContext(ctx, `SELECT id, key_id, filename, purpose, bytes, path, created_at FROM batch_files WHERE `+
		strings.Join(where, " AND ")+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var out []*File
	for rows.Next() {
		var file File
		var created int64
		if err := rows.Scan(&file.ID, &file.KeyID, &file.Filename, &file.Purpose, &file.Bytes, &file.path, &created); err != nil {
			return nil, false, err
		}
		file.CreatedAt = time.Unix(created, 0)
		out = append(out, &file)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, rows.Err()
}

// Delete removes keyID's file id.
func (f *Files) Delete(ctx context.Context, keyID, id string) error {
	file, err := f.Get(ctx, keyID, id)
	if err != nil {
		return err
	}
	if _, err := f.db.ExecContext(ctx, `DELETE FROM batch_files WHERE id = ?`, id); err != nil {
		return err
	}
	os.Remove(file.path)
	return nil
}

// Staged is an upload written to disk and not yet a file; Commit makes
// it one, Discard drops it.
type Staged struct {
	f     *os.File
	Bytes int64
}

// Stage writes what r holds, up to limit bytes, to disk.
func (f *Files) Stage(r io.Reader, limit int64) (*Staged, error) {
	tmp, err := f.temp()
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(tmp, io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = ErrTooLarge
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return &Staged{f: tmp, Bytes: n}, nil
}

// Discard drops a staged upload.
func (s *Staged) Discard() {
	s.f.Close()
	os.Remove(s.f.Name())
}

// Commit makes a staged upload a new file of keyID's.
func (f *Files) Commit(ctx context.Context, s *Staged, keyID, filename, purpose string) (*File, error) {
	defer os.Remove(s.f.Name())
	return f.register(ctx, s.f, NewID("file-"), keyID, filename, purpose)
}
