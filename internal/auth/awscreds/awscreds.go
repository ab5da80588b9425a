// Package awscreds issues, stores and looks up the AWS access-key pairs
// Junction hands out for its AWS-shaped surfaces (the Bedrock runtime,
// later SageMaker's), so that AWS SDK clients can sign requests with
// Signature Version 4 and be attributed to a Junction key.
//
// Verifying a signature needs the secret in plaintext, so secrets cannot
// be hashed like API keys: they are sealed with AES-GCM under the data
// directory's master key (package secret) in the database, and the live
// ones are kept decrypted in memory, so a lookup on the request path is a
// map read with no database round trip. A pair is shown once, when made.
package awscreds

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/auth/secret"
)

// Prefix starts every access key id Junction issues, so that one is told
// apart from an AWS-issued key (AKIA..., ASIA...) at a glance.
const Prefix = "JKAK"

// Credential is an access key's record; the secret is never part of it.
type Credential struct {
	AccessKeyID string     `json:"access_key_id"`
	KeyID       string     `json:"key_id"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// ErrNotFound is returned for an unknown access key id.
var ErrNotFound = errors.New("AWS access key not found")

// entry is a live credential in memory.
type entry struct {
	keyID  string
	secret string
}

// Store keeps credentials in the database and the live ones in memory.
// It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	keyPath string

	mu   sync.RWMutex
	box  *secret.Box // nil until the master key is first needed
	live map[string]entry
}

// Open loads the live credentials from db. keyPath is the master key's
// file; it is read only if there are credentials, and made only when the
// first one is created.
func Open(ctx context.Context, db *sql.DB, keyPath string) (*Store, error) {
	s := &Store{db: db, keyPath: keyPath, live: map[string]entry{}}
	return s, s.Refresh(ctx)
}

// Refresh reloads the live credentials from the database, so that those
// issued or revoked by another replica sharing it (and the same master
// key) take effect here.
func (s *Store) Refresh(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT access_key_id, key_id, secret_ciphertext FROM aws_credentials WHERE revoked_at IS NULL`)
	if err != nil {
		return err
	}
	defer rows.Close()
	live := map[string]entry{}
	s.mu.RLock()
	box, old := s.box, s.live
	s.mu.RUnlock()
	for rows.Next() {
		var id, keyID string
		var sealed []byte
		if err := rows.Scan(&id, &keyID, &sealed); err != nil {
			return err
		}
		if e, ok := old[id]; ok && e.keyID == keyID {
			live[id] = e // already opened
			continue
		}
		if box == nil {
			// Credentials exist, so the key they were sealed with must:
			// making a new one would orphan them silently.
			if box, err = secret.Load(s.keyPath); err != nil {
				return fmt.Errorf("AWS credentials are stored but cannot be decrypted: %w", err)
			}
		}
		plain, err := box.Open(sealed, []byte(id))
		if err != nil {
			return fmt.Errorf("AWS credential %s: %w (replicas must share the data directory's master.key)", id, err)
		}
		live[id] = entry{keyID: keyID, secret: string(plain)}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.box == nil {
		s.box = box
	}
	s.live = live
	s.mu.Unlock()
	return nil
}

// SecretAccessKey returns the secret of a live access key id; it
// implements sigv4.Secrets.
func (s *Store) SecretAccessKey(accessKeyID string) (string, bool) {
	s.mu.RLock()
	e, ok := s.live[accessKeyID]
	s.mu.RUnlock()
	return e.secret, ok
}

// Owner returns the id of the Junction key a live access key id was
// issued for.
func (s *Store) Owner(accessKeyID string) (keyID string, ok bool) {
	s.mu.RLock()
	e, ok := s.live[accessKeyID]
	s.mu.RUnlock()
	return e.keyID, ok
}

// sealer returns the Box, opening or creating the master key on first
// use.
func (s *Store) sealer() (*secret.Box, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.box == nil {
		b, err := secret.Open(s.keyPath)
		if err != nil {
			return nil, err
		}
		s.box = b
	}
	return s.box, nil
}

// Create issues an access-key pair for the Junction key keyID and returns
// its record and its secret, which is not shown again. The caller checks
// that keyID is a live key.
func (s *Store) Create(ctx context.Context, keyID string) (*Credential, string, error) {
	box, err := s.sealer()
	if err != nil {
		return nil, "", err
	}
	var idRaw [10]byte
	var secretRaw [30]byte
	if _, err := rand.Read(idRaw[:]); err != nil {
		return nil, "", err
	}
	if _, err := rand.Read(secretRaw[:]); err != nil {
		return nil, "", err
	}
	// 20 and 40 characters, the lengths of AWS's own access key ids and
	// secrets; the id is upper case letters and digits, as AWS's are.
	c := &Credential{
		AccessKeyID: Prefix + base32.StdEncoding.EncodeToString(idRaw[:])[:16],
		KeyID:       keyID,
		CreatedAt:   time.Now().UTC().Truncate(time.Millisecond),
	}
	plain := base64.StdEncoding.EncodeToString(secretRaw[:])
	sealed := box.Seal([]byte(plain), []byte(c.AccessKeyID))
	if _, err := s.db.ExecContext(ctx, `INSERT INTO aws_credentials(access_key_id, key_id, secret_ciphertext, created_at) VALUES (?,?,?,?)`,
		c.AccessKeyID, keyID, sealed, c.CreatedAt.UnixMilli()); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	s.live[c.AccessKeyID] = entry{keyID: keyID, secret: plain}
	s.mu.Unlock()
	return c, plain, nil
}

// List returns the credentials of the Junction key keyID, revoked ones
// included, oldest first.
func (s *Store) List(ctx context.Context, keyID string) ([]*Credential, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT access_key_id, key_id, created_at, revoked_at FROM aws_credentials WHERE key_id = ? ORDER BY created_at, rowid`, keyID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Credential{}
	for rows.Next() {
		var c Credential
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&c.AccessKeyID, &c.KeyID, &created, &revoked); err != nil {
			return nil, err
		}
		c.CreatedAt = time.UnixMilli(created).UTC()
		if revoked.Valid {
			t := time.UnixMilli(revoked.Int64).UTC()
			c.RevokedAt = &t
		}
		out = append(out, &c)
	}
	return out, rows.Err()
}

// Revoke revokes an access key; it stops working at once. Revoking a
// revoked key is not an error.
func (s *Store) Revoke(ctx context.Context, accessKeyID string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE aws_credentials SET revoked_at = ? WHERE access_key_id = ? AND revoked_at IS NULL`,
		time.Now().UnixMilli(), accessKeyID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var exists int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM aws_credentials WHERE access_key_id = ?`, accessKeyID).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return ErrNotFound
		}
		return nil
	}
	s.mu.Lock()
	delete(s.live, accessKeyID)
	s.mu.Unlock()
	return nil
}
