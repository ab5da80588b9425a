package guardrail

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// Draft is the version name of a guardrail's working copy.
const Draft = "DRAFT"

// Record is a stored guardrail version.
type Record struct {
	ID string `json:"guardrailId"`
	// Version is "DRAFT" or a frozen version number ("1", "2", ...).
	Version   string    `json:"version"`
	Policy    Policy    `json:"policy"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Source is "config" for guardrails defined in the config file,
	// "api" for those made through /api/v1/guardrails.
	Source string `json:"source"`
	// LatestVersion is the highest frozen version, in listings; "" if none.
	LatestVersion string `json:"latestVersion,omitempty"`
}

// Store keeps guardrails in SQLite (the guardrails table): one DRAFT row
// per guardrail, which PUT changes, and numbered versions frozen from it,
// which never change.
type Store struct {
	DB  *sql.DB
	Now func() time.Time
}

// ErrNotFound is returned for an unknown guardrail or version.
var ErrNotFound = errors.New("guardrail not found")

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// newID returns a 12-character lower-case id, as Bedrock's.
func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [12]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// Create stores a new guardrail's draft.
func (s *Store) Create(ctx context.Context, p Policy) (*Record, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var exists int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM guardrails WHERE name = ? AND version = 0`, p.Name).Scan(&exists); err != nil {
		return nil, err
	}
	if exists > 0 {
		return nil, llm.Errorf(http.StatusConflict, llm.ErrInvalidRequest, "a guardrail named %q exists", p.Name)
	}
	now := s.now()
	r := &Record{ID: newID(), Version: Draft, Policy: p, CreatedAt: now.UTC(), UpdatedAt: now.UTC(), Source: "api"}
	_, err = s.DB.ExecContext(ctx, `INSERT INTO guardrails (id, version, name, policy, created_at, updated_at) VALUES (?, 0, ?, ?, ?, ?)`,
		r.ID, p.Name, string(body), now.UnixMilli(), now.UnixMilli())
	return r, err
}

// UpdateDraft replaces a guardrail's draft.
func (s *Store) UpdateDraft(ctx context.Context, id string, p Policy) (*Record, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	now := s.now()
	res, err := s.DB.ExecContext(ctx, `UPDATE guardrails SET policy = ?, name = ?, updated_at = ? WHERE id = ? AND version = 0`,
		string(body), p.Name, now.UnixMilli(), id)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrNotFound
	}
	return s.Get(ctx, id, Draft)
}

// CreateVersion freezes the draft as the next numbered version.
func (s *Store) CreateVersion(ctx context.Context, id string) (*Record, error) {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var name, policy string
	if err := tx.QueryRowContext(ctx, `SELECT name, policy FROM guardrails WHERE id = ? AND version = 0`, id).Scan(&name, &policy); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	var next int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM guardrails WHERE id = ?`, id).Scan(&next); err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	if _, err := tx.ExecContext(ctx, `INSERT INTO guardrails (id, version, name, policy, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		id, next, name, policy, now, now); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return s.Get(ctx, id, strconv.Itoa(next))
}

// Delete removes a guardrail, by id or name: its draft and every frozen
// version. It returns the draft it removed, whose ID and Policy.Name a
// Registry must Forget.
func (s *Store) Delete(ctx context.Context, identifier string) (*Record, error) {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	r, err := scanRecord(tx.QueryRowContext(ctx, `SELECT id, version, policy, created_at, updated_at FROM guardrails
		WHERE (id = ? OR name = ?) AND version = 0`, identifier, identifier))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM guardrails WHERE id = ?`, r.ID); err != nil {
		return nil, err
	}
	return r, tx.Commit()
}

// parseVersion turns "DRAFT" or "3" into the stored number (0 for DRAFT).
func parseVersion(v string) (int, error) {
	if v == Draft {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || strconv.Itoa(n) != v {
		return 0, llm.BadRequest("guardrailVersion", "guardrailVersion %q must be DRAFT or a version number (1, 2, ...)", v)
	}
	return n, nil
}

func versionName(n int) string {
	if n == 0 {
		return Draft
	}
	return strconv.Itoa(n)
}

// Get returns one version of a guardrail, by id or name.
func (s *Store) Get(ctx context.Context, id, version string) (*Record, error) {
	n, err := parseVersion(version)
	if err != nil {
		return nil, err
	}
	row := s.DB.QueryRowContext(ctx, `SELECT id, version, policy, created_at, updated_at FROM guardrails
		WHERE (id = ? OR id = (SELECT id FROM guardrails WHERE name = ? AND version = 0)) AND version = ?`, id, id, n)
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

type scanner interface{ Scan(...any) error }

func scanRecord(row scanner) (*Record, error) {
	var r Record
	var v int
	var policy string
	var created, updated int64
	if err := row.Scan(&r.ID, &v, &policy, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(policy), &r.Policy); err != nil {
		return nil, fmt.Errorf("guardrail %s: stored policy: %w", r.ID, err)
	}
	r.Version, r.Source = versionName(v), "api"
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &r, nil
}

// List returns every guardrail's draft with its latest version number.
func (s *Store) List(ctx context.Context) ([]*Record, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, version, policy, created_at, updated_at,
		(SELECT MAX(version) FROM guardrails v WHERE v.id = g.id) FROM guardrails g WHERE version = 0 ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Record
	for rows.Next() {
		var latest int
		var r Record
		var v int
		var policy string
		var created, updated int64
		if err := rows.Scan(&r.ID, &v, &policy, &created, &updated, &latest); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(policy), &r.Policy); err != nil {
			return nil, fmt.Errorf("guardrail %s: stored policy: %w", r.ID, err)
		}
		r.Version, r.Source = Draft, "api"
		r.CreatedAt, r.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		if latest > 0 {
			r.LatestVersion = strconv.Itoa(latest)
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

// Registry finds the compiled guard for an identifier and version: the
// config's guardrails first, then the store's. A stored guard is compiled
// once and re-read from the store at most every DraftTTL (a draft) or
// FrozenTTL (a frozen version, which never changes but may be deleted),
// so that an update or a delete through another replica takes effect
// within it. A draft is compiled again only when it changed.
type Registry struct {
	opts   Options
	config map[string]*configured
	store  *Store

	mu    sync.Mutex
	cache map[string]*cached
	// DraftTTL bounds how stale a cached draft may be (default 2s).
	DraftTTL time.Duration
	// FrozenTTL bounds how long a frozen version deleted through another
	// replica is still served here (default 10s).
	FrozenTTL time.Duration
}

type configured struct {
	cfg   Config
	guard *Guard
}

type cached struct {
	g *Guard
	// policy is what g was compiled from, which tells a changed draft
	// from one read again unchanged (an update may fall in the same
	// millisecond of updated_at).
	policy Policy
	at     time.Time
}

// NewRegistry compiles the config's guardrails (Validate them first) and
// serves stored ones from store, which may be nil.
func NewRegistry(cfgs []Config, store *Store, opts Options) (*Registry, error) {
	r := &Registry{opts: opts, config: map[string]*configured{}, store: store, cache: map[string]*cached{}}
	for i, c := range cfgs {
		id := c.ID
		if id == "" {
			id = c.Name
		}
		if c.Version == 0 {
			c.Version = 1
		}
		g, err := Compile(c.Policy, opts)
		if err != nil {
			return nil, fmt.Errorf("guardrails[%d]: %w", i, err)
		}
		g.ID, g.Version = id, strconv.Itoa(c.Version)
		r.config[id] = &configured{cfg: c, guard: g}
	}
	return r, nil
}

// Configured returns the config's guardrails as records.
func (r *Registry) Configured() []*Record {
	var out []*Record
	for id, c := range r.config {
		out = append(out, &Record{ID: id, Version: Draft, LatestVersion: strconv.Itoa(c.cfg.Version), Policy: c.cfg.Policy, Source: "config"})
	}
	return out
}

// Lookup returns the guard for identifier (an id or a name) at version
// (DRAFT or a number). An unknown one is a 404 *llm.Error. While the
// store cannot be read, a guard read before is served as it was.
func (r *Registry) Lookup(ctx context.Context, identifier, version string) (*Guard, error) {
	if c, ok := r.config[identifier]; ok {
		if version == Draft || version == c.guard.Version {
			return c.guard, nil
		}
		return nil, llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "guardrail %s has no version %s: it is defined in the config, as version %s (or DRAFT)",
			identifier, version, c.guard.Version)
	}
	if _, err := parseVersion(version); err != nil {
		return nil, err
	}
	key := identifier + "\x00" + version
	r.mu.Lock()
	c := r.cache[key]
	r.mu.Unlock()
	ttl := cmp.Or(r.DraftTTL, 2*time.Second)
	if version != Draft {
		ttl = cmp.Or(r.FrozenTTL, 10*time.Second)
	}
	if c != nil && time.Since(c.at) < ttl {
		return c.g, nil
	}
	if r.store == nil {
		return nil, notFound(identifier, version)
	}
	rec, err := r.store.Get(ctx, identifier, version)
	if errors.Is(err, ErrNotFound) {
		r.mu.Lock()
		delete(r.cache, key)
		r.mu.Unlock()
		return nil, notFound(identifier, version)
	}
	if err != nil {
		if c != nil && ctx.Err() == nil {
			// Served as it was, and not asked for again for a TTL, so
			// that requests do not each wait on a store that fails.
			r.mu.Lock()
			r.cache[key] = &cached{g: c.g, policy: c.policy, at: time.Now()}
			r.mu.Unlock()
			return c.g, nil
		}
		return nil, err
	}
	var g *Guard
	if c != nil && c.g.ID == rec.ID && reflect.DeepEqual(c.policy, rec.Policy) {
		g = c.g // unchanged: guards in use are never written to
	} else {
		if g, err = Compile(rec.Policy, r.opts); err != nil {
			return nil, err
		}
		g.ID, g.Version = rec.ID, rec.Version
	}
	r.mu.Lock()
	r.cache[key] = &cached{g: g, policy: rec.Policy, at: time.Now()}
	r.mu.Unlock()
	return g, nil
}

// Forget drops a cached draft after it changed in this process.
func (r *Registry) Forget(identifier string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.cache {
		if strings.HasPrefix(k, identifier+"\x00") {
			delete(r.cache, k)
		}
	}
}

// Store returns the registry's store (nil if none).
func (r *Registry) Store() *Store { return r.store }

func notFound(identifier, version string) error {
	return llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "guardrail %s version %s does not exist", identifier, version)
}
