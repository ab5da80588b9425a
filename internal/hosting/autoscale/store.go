package autoscale

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// Store keeps scaling policies in Junction's database (table
// scaling_policies), so they outlive a restart.
type Store struct {
	DB *sql.DB
}

// Put stores p, replacing the variant's policy if it had one.
func (s *Store) Put(ctx context.Context, p *Policy) error {
	p.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	spec, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = s.DB.ExecContext(ctx, `INSERT INTO scaling_policies(endpoint, variant, spec, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (endpoint, variant) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
		p.Endpoint, p.Variant, string(spec), p.UpdatedAt.UnixMilli())
	return err
}

// Get returns a variant's policy, or nil when it has none.
func (s *Store) Get(ctx context.Context, endpoint, variant string) (*Policy, error) {
	var spec string
	err := s.DB.QueryRowContext(ctx, `SELECT spec FROM scaling_policies WHERE endpoint = ? AND variant = ?`, endpoint, variant).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p := &Policy{}
	return p, json.Unmarshal([]byte(spec), p)
}

// Delete removes a variant's policy and reports whether there was one.
func (s *Store) Delete(ctx context.Context, endpoint, variant string) (bool, error) {
	res, err := s.DB.ExecContext(ctx, `DELETE FROM scaling_policies WHERE endpoint = ? AND variant = ?`, endpoint, variant)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// List returns every policy, or an endpoint's when endpoint is not empty,
// by endpoint and variant.
func (s *Store) List(ctx context.Context, endpoint string) ([]*Policy, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT spec FROM scaling_policies WHERE ? = '' OR endpoint = ? ORDER BY endpoint, variant`, endpoint, endpoint)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Policy{}
	for rows.Next() {
		var spec string
		if err := rows.Scan(&spec); err != nil {
			return nil, err
		}
		p := &Policy{}
		if err := json.Unmarshal([]byte(spec), p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// replace writes p over the stored policy only if that is still the one
// last written at prev (so a policy the API stored meanwhile is not lost),
// and reports whether it did. It was written at now.
func (s *Store) replace(ctx context.Context, p *Policy, prev, now time.Time) (bool, error) {
	p.UpdatedAt = now.UTC().Truncate(time.Millisecond)
	if !p.UpdatedAt.After(prev) {
		p.UpdatedAt = prev.Add(time.Millisecond)
	}
	spec, err := json.Marshal(p)
	if err != nil {
		return false, err
	}
	res, err := s.DB.ExecContext(ctx, `UPDATE scaling_policies SET spec = ?, updated_at = ? WHERE endpoint = ? AND variant = ? AND updated_at = ?`,
		string(spec), p.UpdatedAt.UnixMilli(), p.Endpoint, p.Variant, prev.UnixMilli())
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
