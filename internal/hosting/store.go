package hosting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
)

// Store keeps hosting resources, endpoint histories and metered instance
// time in Junction's database.
type Store struct {
	DB *sql.DB
}

// Resource errors, with the status the REST surface answers.
const (
	ErrNotFound = "ResourceNotFound"
	ErrInUse    = "ResourceInUse"
	ErrExists   = "ResourceExists"
)

func notFound(kind, name string) *Error {
	return &Error{Status: http.StatusNotFound, Code: ErrNotFound, Message: fmt.Sprintf("%s %q does not exist", kind, name)}
}

func conflict(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

func isUnique(err error) bool { return store.IsUniqueViolation(err) }

// CreateModel stores a new model.
func (s *Store) CreateModel(ctx context.Context, m *Model) error {
	m.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	spec, _ := json.Marshal(m)
	_, err := s.DB.ExecContext(ctx, `INSERT INTO hosting_models(name, spec, created_at) VALUES (?, ?, ?)`, m.Name, spec, m.CreatedAt.UnixMilli())
	if isUnique(err) {
		return conflict(ErrExists, "model %q already exists", m.Name)
	}
	return err
}

// Model returns a model by name.
func (s *Store) Model(ctx context.Context, name string) (*Model, error) {
	var spec string
	err := s.DB.QueryRowContext(ctx, `SELECT spec FROM hosting_models WHERE name = ?`, name).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("model", name)
	}
	if err != nil {
		return nil, err
	}
	m := &Model{}
	return m, json.Unmarshal([]byte(spec), m)
}

// Models lists models by name.
func (s *Store) Models(ctx context.Context) ([]*Model, error) {
	return list[Model](ctx, s.DB, `SELECT spec FROM hosting_models ORDER BY name`)
}

// UpdateModel replaces a stored model's spec.
func (s *Store) UpdateModel(ctx context.Context, m *Model) error {
	old, err := s.Model(ctx, m.Name)
	if err != nil {
		return err
	}
	m.CreatedAt = old.CreatedAt
	spec, _ := json.Marshal(m)
	_, err = s.DB.ExecContext(ctx, `UPDATE hosting_models SET spec = ? WHERE name = ?`, spec, m.Name)
	return err
}

// UpdateConfig replaces a stored endpoint config's spec.
func (s *Store) UpdateConfig(ctx context.Context, c *EndpointConfig) error {
	old, err := s.Config(ctx, c.Name)
	if err != nil {
		return err
	}
	c.CreatedAt = old.CreatedAt
	spec, _ := json.Marshal(c)
	_, err = s.DB.ExecContext(ctx, `UPDATE hosting_endpoint_configs SET spec = ? WHERE name = ?`, spec, c.Name)
	return err
}

// DeleteModel removes a model.
func (s *Store) DeleteModel(ctx context.Context, name string) error {
	return s.delete(ctx, `DELETE FROM hosting_models WHERE name = ?`, "model", name)
}

// CreateConfig stores a new endpoint config.
func (s *Store) CreateConfig(ctx context.Context, c *EndpointConfig) error {
	c.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	spec, _ := json.Marshal(c)
	_, err := s.DB.ExecContext(ctx, `INSERT INTO hosting_endpoint_configs(name, spec, created_at) VALUES (?, ?, ?)`, c.Name, spec, c.CreatedAt.UnixMilli())
	if isUnique(err) {
		return conflict(ErrExists, "endpoint config %q already exists", c.Name)
	}
	return err
}

// Config returns an endpoint config by name.
func (s *Store) Config(ctx context.Context, name string) (*EndpointConfig, error) {
	var spec string
	err := s.DB.QueryRowContext(ctx, `SELECT spec FROM hosting_endpoint_configs WHERE name = ?`, name).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("endpoint config", name)
	}
	if err != nil {
		return nil, err
	}
	c := &EndpointConfig{}
	return c, json.Unmarshal([]byte(spec), c)
}

// Configs lists endpoint configs by name.
func (s *Store) Configs(ctx context.Context) ([]*EndpointConfig, error) {
	return list[EndpointConfig](ctx, s.DB, `SELECT spec FROM hosting_endpoint_configs ORDER BY name`)
}

// DeleteConfig removes an endpoint config.
func (s *Store) DeleteConfig(ctx context.Context, name string) error {
	return s.delete(ctx, `DELETE FROM hosting_endpoint_configs WHERE name = ?`, "endpoint config", name)
}

func (s *Store) delete(ctx context.Context, query, kind, name string) error {
	res, err := s.DB.ExecContext(ctx, query, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound(kind, name)
	}
	return nil
}

func list[T any](ctx context.Context, db *sql.DB, query string) ([]*T, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		var spec string
		if err := rows.Scan(&spec); err != nil {
			return nil, err
		}
		v := new(T)
		if err := json.Unmarshal([]byte(spec), v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) addEvent(ctx context.Context, endpoint, message string) error {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO hosting_events(endpoint, ts, message) VALUES (?, ?, ?)`, endpoint, time.Now().UnixMilli(), message)
	return err
}

// Events returns an endpoint's history, oldest first, at most limit lines
// (the newest ones).
func (s *Store) Events(ctx context.Context, endpoint string, limit int) ([]Event, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT ts, message FROM (SELECT id, ts, message FROM hosting_events WHERE endpoint = ?
		ORDER BY id DESC LIMIT ?) AS newest ORDER BY id`, endpoint, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var ts int64
		ev := Event{Endpoint: endpoint}
		if err := rows.Scan(&ts, &ev.Message); err != nil {
			return nil, err
		}
		ev.Time = time.UnixMilli(ts).UTC()
		out = append(out, ev)
	}
	return out, rows.Err()
}

// Segment is a stretch of one instance's running time.
type Segment struct {
	Endpoint, Variant, InstanceID, InstanceType string
	Start, End                                  time.Time
	// USDPerHour is nil when the instance type has no price.
	USDPerHour *float64
}

// Cost is the segment's price, or nil when unknown.
func (g Segment) Cost() *float64 {
	if g.USDPerHour == nil {
		return nil
	}
	c := *g.USDPerHour * g.End.Sub(g.Start).Hours()
	return &c
}

func (s *Store) addSegments(ctx context.Context, segs []Segment) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, g := range segs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO hosting_usage(endpoint, variant, instance_id, instance_type, start_ts, end_ts, usd_per_hour, cost_usd)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, g.Endpoint, g.Variant, g.InstanceID, g.InstanceType, g.Start.UnixMilli(), g.End.UnixMilli(), g.USDPerHour, g.Cost()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// meteredUntil is the end of the last metered segment of an instance, or
// the zero time.
func (s *Store) meteredUntil(ctx context.Context, instanceID string) (time.Time, error) {
	var end sql.NullInt64
	if err := s.DB.QueryRowContext(ctx, `SELECT MAX(end_ts) FROM hosting_usage WHERE instance_id = ?`, instanceID).Scan(&end); err != nil {
		return time.Time{}, err
	}
	if !end.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(end.Int64), nil
}

// HostingRow is one group of a hosting-cost report.
type HostingRow struct {
	Endpoint      string  `json:"endpoint"`
	Variant       string  `json:"variant"`
	InstanceType  string  `json:"instance_type"`
	InstanceHours float64 `json:"instance_hours"`
	CostUSD       float64 `json:"cost_usd"`
	// Unpriced is true when some of the time ran on an instance type with
	// no known price; that time is not in CostUSD.
	Unpriced bool `json:"unpriced,omitempty"`
}

// HostingReport sums metered instance time that overlaps [from, to) by
// endpoint, variant and instance type, clipping segments to the window.
func HostingReport(ctx context.Context, db *sql.DB, from, to time.Time) ([]HostingRow, error) {
	f, t := from.UnixMilli(), to.UnixMilli()
	rows, err := db.QueryContext(ctx, `SELECT endpoint, variant, instance_type, SUM(ms) / 3600000.0,
		COALESCE(SUM(usd_per_hour * ms / 3600000.0), 0), SUM(CASE WHEN usd_per_hour IS NULL THEN 1 ELSE 0 END)
		FROM (SELECT endpoint, variant, instance_type, usd_per_hour,
			(CASE WHEN end_ts < ? THEN end_ts ELSE ? END) - (CASE WHEN start_ts > ? THEN start_ts ELSE ? END) AS ms
			FROM hosting_usage WHERE end_ts > ? AND start_ts < ?) AS clipped
		GROUP BY endpoint, variant, instance_type ORDER BY 5 DESC, endpoint, variant`, t, t, f, f, f, t)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []HostingRow{}
	for rows.Next() {
		var r HostingRow
		var unpriced int
		if err := rows.Scan(&r.Endpoint, &r.Variant, &r.InstanceType, &r.InstanceHours, &r.CostUSD, &unpriced); err != nil {
			return nil, err
		}
		r.Unpriced = unpriced > 0
		out = append(out, r)
	}
	return out, rows.Err()
}
