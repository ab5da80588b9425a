// Package keys issues, stores and checks Junction's API keys. Keys are
// stored only as SHA-256 hashes; the plaintext is shown once, when made.
// Checking a key is a hash and a map lookup in memory, with no database
// round trip, so it costs the hot path next to nothing.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Prefix starts every key Junction issues, so leaked keys are recognisable.
const Prefix = "jk-"

// Key is an API key's record. Hash is never shown to clients.
type Key struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Prefix    string            `json:"prefix"`
	Tags      map[string]string `json:"tags"`
	Admin     bool              `json:"admin"`
	CreatedAt time.Time         `json:"created_at"`
	RevokedAt *time.Time        `json:"revoked_at,omitempty"`
	// Team and Project are the team and project the key belongs to; every
	// request it makes carries them as the tags team and project.
	Team    string `json:"team,omitempty"`
	Project string `json:"project,omitempty"`
	// RPM and TPM are the key's own rate limits (0: the configured ones).
	RPM  int64 `json:"rpm,omitempty"`
	TPM  int64 `json:"tpm,omitempty"`
	hash string
}

// ErrNotFound is returned for an unknown key id.
var ErrNotFound = errors.New("key not found")

// Store keeps keys in the database and an in-memory index of live ones.
type Store struct {
	db   *sql.DB
	mu   sync.RWMutex
	live map[string]*Key // by hash
	byID map[string]*Key // the live keys by id
}

// Open loads the live keys from db.
func Open(ctx context.Context, db *sql.DB) (*Store, error) {
	s := &Store{db: db, live: map[string]*Key{}, byID: map[string]*Key{}}
	return s, s.Refresh(ctx)
}

// Refresh reloads the live keys from the database, so that keys made,
// revoked or changed by another replica sharing it take effect here.
func (s *Store) Refresh(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, hash, prefix, tags, admin, created_at, team, project, rpm, tpm FROM keys WHERE revoked_at IS NULL`)
	if err != nil {
		return err
	}
	defer rows.Close()
	live, byID := map[string]*Key{}, map[string]*Key{}
	for rows.Next() {
		k, err := scanKey(rows, false)
		if err != nil {
			return err
		}
		live[k.hash] = k
		byID[k.ID] = k
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.live, s.byID = live, byID
	s.mu.Unlock()
	return nil
}

type scanner interface{ Scan(...any) error }

func scanKey(r scanner, withRevoked bool) (*Key, error) {
	var k Key
	var tags string
	var created int64
	var admin int
	dest := []any{&k.ID, &k.Name, &k.hash, &k.Prefix, &tags, &admin, &created, &k.Team, &k.Project, &k.RPM, &k.TPM}
	var revoked sql.NullInt64
	if withRevoked {
		dest = append(dest, &revoked)
	}
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	k.Admin = admin != 0
	k.CreatedAt = time.UnixMilli(created).UTC()
	if revoked.Valid {
		t := time.UnixMilli(revoked.Int64).UTC()
		k.RevokedAt = &t
	}
	if err := json.Unmarshal([]byte(tags), &k.Tags); err != nil {
		return nil, fmt.Errorf("key %s: tags: %w", k.ID, err)
	}
	k.Tags = orgTags(k.Tags, k.Team, k.Project)
	return &k, nil
}

// Hash returns the stored form of a plaintext key.
func Hash(plaintext string) string {
	h := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(h[:])
}

// Authenticate returns the live key whose plaintext is token.
func (s *Store) Authenticate(token string) (*Key, bool) {
	h := sha256.Sum256([]byte(token))
	var buf [64]byte
	hex.Encode(buf[:], h[:])
	s.mu.RLock()
	k, ok := s.live[string(buf[:])]
	s.mu.RUnlock()
	return k, ok
}

// Live returns the live (not revoked) key with id. Credentials that stand
// for a key, such as AWS access keys, use it to find their key and to stop
// working once it is revoked.
func (s *Store) Live(id string) (*Key, bool) {
	s.mu.RLock()
	k, ok := s.byID[id]
	s.mu.RUnlock()
	return k, ok
}

// Create makes a key and returns its record and its plaintext, which is
// not stored and cannot be shown again.
func (s *Store) Create(ctx context.Context, name string, tags map[string]string, admin bool) (*Key, string, error) {
	return s.CreateKey(ctx, Spec{Name: name, Tags: tags, Admin: admin})
}

// Spec describes a key to make.
type Spec struct {
	Name  string
	Tags  map[string]string
	Admin bool
	// Team and Project, when set, must exist (see CreateTeam).
	Team, Project string
	// RPM and TPM are the key's own rate limits; 0 leaves the configured
	// ones.
	RPM, TPM int64
}

// CreateKey is Create with a team, a project and rate limits.
func (s *Store) CreateKey(ctx context.Context, spec Spec) (*Key, string, error) {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, "", err
	}
	if err := s.checkOrg(ctx, spec.Team, spec.Project); err != nil {
		return nil, "", err
	}
	if spec.RPM < 0 || spec.TPM < 0 {
		return nil, "", orgErr(ErrInvalid, "rpm and tpm must not be negative")
	}
	plaintext := Prefix + base64.RawURLEncoding.EncodeToString(raw[:])
	k, err := s.insert(ctx, spec, plaintext)
	return k, plaintext, err
}

// Ensure makes sure plaintext is a live admin key (the admin key from
// config), adding it if needed.
func (s *Store) Ensure(ctx context.Context, name, plaintext string) error {
	if _, ok := s.Authenticate(plaintext); ok {
		return nil
	}
	_, err := s.insert(ctx, Spec{Name: name, Admin: true}, plaintext)
	return err
}

func (s *Store) insert(ctx context.Context, spec Spec, plaintext string) (*Key, error) {
	tags := spec.Tags
	if err := ValidateTags(tags); err != nil {
		return nil, err
	}
	if tags == nil {
		tags = map[string]string{}
	}
	var id [8]byte
	rand.Read(id[:])
	k := &Key{ID: "key_" + hex.EncodeToString(id[:]), Name: spec.Name, Prefix: plaintext[:min(len(plaintext), 7)],
		Tags: orgTags(tags, spec.Team, spec.Project), Admin: spec.Admin, CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
		Team: spec.Team, Project: spec.Project, RPM: spec.RPM, TPM: spec.TPM, hash: Hash(plaintext)}
	tj, _ := json.Marshal(tags)
	a := 0
	if spec.Admin {
		a = 1
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO keys(id, name, hash, prefix, tags, admin, created_at, team, project, rpm, tpm) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		k.ID, k.Name, k.hash, k.Prefix, string(tj), a, k.CreatedAt.UnixMilli(), k.Team, k.Project, k.RPM, k.TPM)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.live[k.hash] = k
	s.byID[k.ID] = k
	s.mu.Unlock()
	return k, nil
}

// HasAdmin reports whether any live admin key exists.
func (s *Store) HasAdmin() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.live {
		if k.Admin {
			return true
		}
	}
	return false
}

// List returns every key, revoked ones included, oldest first.
func (s *Store) List(ctx context.Context) ([]*Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, hash, prefix, tags, admin, created_at, team, project, rpm, tpm, revoked_at FROM keys ORDER BY created_at, rowid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Key
	for rows.Next() {
		k, err := scanKey(rows, true)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Revoke revokes the key with id; it stops working at once.
func (s *Store) Revoke(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, time.Now().UnixMilli(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var exists int
		s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM keys WHERE id = ?`, id).Scan(&exists)
		if exists == 0 {
			return ErrNotFound
		}
		return nil // already revoked
	}
	s.mu.Lock()
	if k, ok := s.byID[id]; ok {
		delete(s.live, k.hash)
		delete(s.byID, id)
	}
	s.mu.Unlock()
	return nil
}

// ParseTags parses "team=search,app=faq" into a map. An empty string is no
// tags.
func ParseTags(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := make(map[string]string, strings.Count(s, ",")+1)
	for rest, more := s, true; more; {
		var kv string
		kv, rest, more = strings.Cut(rest, ",")
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("tag %q must be name=value", kv)
		}
		out[k] = v
	}
	return out, ValidateTags(out)
}

// ValidateTags checks tag names and values. Of several bad tags, the first
// by name is reported.
func ValidateTags(tags map[string]string) error {
	if len(tags) > 32 {
		return errors.New("at most 32 tags")
	}
	// Every request's tags pass through here: the names are sorted, for
	// the error to name the same tag each time, only when one is bad.
	for k, v := range tags {
		if tagError(k, v) != nil {
			for _, k := range slices.Sorted(maps.Keys(tags)) {
				if err := tagError(k, tags[k]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// tagError says what is wrong with one tag, if anything.
func tagError(k, v string) error {
	if len(k) > 64 || !tagName(k) {
		return fmt.Errorf("tag name %q: use 1-64 letters, digits, '_', '-' or '.'", k)
	}
	if len(v) > 256 {
		return fmt.Errorf("tag %q: value longer than 256 bytes", k)
	}
	return nil
}

func tagName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Merge returns the key's default tags overlaid with the request's tags.
func Merge(defaults, request map[string]string) map[string]string {
	if len(request) == 0 {
		return defaults
	}
	out := make(map[string]string, len(defaults)+len(request))
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range request {
		out[k] = v
	}
	return out
}
