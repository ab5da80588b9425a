package hosting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// An endpoint is stored as two records. Its spec is what was asked: the
// config to run, the deployment policy that moves traffic to it, and the
// weights and instance counts set on its variants since. Every change to
// the spec raises its generation. Its status is what is: the config in
// service, the one an update brings up, the generation last converged on,
// and why the last attempt failed. Writers of the spec (the REST API, the
// CLI through it, an autoscaler) never touch the status; only the
// reconciler of the replica that holds the hosting lease writes it.

// endpointSpec is an endpoint's desired state.
type endpointSpec struct {
	Name       string
	Generation int64
	// Config is the endpoint config to run.
	Config string
	// Deployment is how traffic moves to Config when it changes.
	Deployment *Deployment
	// Capacities are weights and instance counts set on Config's
	// variants, by variant name.
	Capacities map[string]VariantCapacity
	// Deleting asks for the endpoint to be stopped and forgotten.
	Deleting             bool
	CreatedAt, UpdatedAt time.Time
}

// endpointStatus is an endpoint's observed state.
type endpointStatus struct {
	// ObservedGeneration is the spec generation last converged on (or
	// given up on: rolled back or failed).
	ObservedGeneration int64
	Status             string
	FailureReason      string
	// ActiveConfig serves traffic; PendingConfig is the one an update in
	// progress brings up.
	ActiveConfig, PendingConfig string
	UpdatedAt                   time.Time
}

// specContext is the context a change of a spec is stored under: a
// client that hangs up once it has sent the request does not undo it
// halfway; a stuck database still ends it.
func specContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
}

// errStale says a spec changed between its read and its write.
var errStale = errors.New("hosting: the endpoint's spec changed meanwhile")

// insertSpec stores a new endpoint at generation 1, with its status
// Creating.
func (s *Store) insertSpec(ctx context.Context, e *endpointSpec) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	e.Generation = 1
	_, err = tx.ExecContext(ctx, `INSERT INTO hosting_endpoints(name, config, status, generation, created_at, updated_at) VALUES (?, ?, '', 1, ?, ?)`,
		e.Name, e.Config, e.CreatedAt.UnixMilli(), e.UpdatedAt.UnixMilli())
	if isUnique(err) {
		return conflict(ErrExists, "endpoint %q already exists", e.Name)
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM hosting_endpoint_status WHERE name = ?`, e.Name); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO hosting_endpoint_status(name, observed_generation, status, updated_at) VALUES (?, 0, ?, ?)`,
		e.Name, StatusCreating, e.UpdatedAt.UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// changeSpec applies change to an endpoint's spec and stores it one
// generation up. change sees the spec and its status as stored and may
// refuse with an error. A concurrent change is retried on, never lost.
func (s *Store) changeSpec(ctx context.Context, name string, change func(*endpointSpec, *endpointStatus) error) (*endpointSpec, error) {
	for {
		sp, err := s.spec(ctx, name)
		if err != nil {
			return nil, err
		}
		if sp == nil || sp.Deleting {
			return nil, notFound("endpoint", name)
		}
		st, err := s.status(ctx, name)
		if err != nil {
			return nil, err
		}
		if err := change(sp, st); err != nil {
			return nil, err
		}
		was := sp.Generation
		sp.Generation++
		sp.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
		err = s.writeSpec(ctx, sp, was)
		if errors.Is(err, errStale) {
			continue
		}
		return sp, err
	}
}

// writeSpec stores sp if the stored generation is still was.
func (s *Store) writeSpec(ctx context.Context, sp *endpointSpec, was int64) error {
	var dep, caps []byte
	if sp.Deployment != nil {
		dep, _ = json.Marshal(sp.Deployment)
	}
	if len(sp.Capacities) > 0 {
		caps, _ = json.Marshal(sp.Capacities)
	}
	res, err := s.DB.ExecContext(ctx, `UPDATE hosting_endpoints SET config = ?, deployment = ?, overrides = ?, deleting = ?, generation = ?, updated_at = ?
		WHERE name = ? AND generation = ?`, sp.Config, string(dep), string(caps), boolInt(sp.Deleting), sp.Generation, sp.UpdatedAt.UnixMilli(), sp.Name, was)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errStale
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const specColumns = `name, generation, config, deployment, overrides, deleting, created_at, updated_at`

func scanSpec(row interface{ Scan(...any) error }) (*endpointSpec, error) {
	e := &endpointSpec{}
	var dep, caps string
	var deleting int
	var created, updated int64
	if err := row.Scan(&e.Name, &e.Generation, &e.Config, &dep, &caps, &deleting, &created, &updated); err != nil {
		return nil, err
	}
	if dep != "" {
		e.Deployment = &Deployment{}
		if err := json.Unmarshal([]byte(dep), e.Deployment); err != nil {
			return nil, fmt.Errorf("endpoint %s: deployment: %w", e.Name, err)
		}
	}
	if caps != "" {
		if err := json.Unmarshal([]byte(caps), &e.Capacities); err != nil {
			return nil, fmt.Errorf("endpoint %s: capacities: %w", e.Name, err)
		}
	}
	e.Deleting = deleting != 0
	e.CreatedAt, e.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return e, nil
}

// spec returns an endpoint's spec, or nil when there is none.
func (s *Store) spec(ctx context.Context, name string) (*endpointSpec, error) {
	e, err := scanSpec(s.DB.QueryRowContext(ctx, `SELECT `+specColumns+` FROM hosting_endpoints WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return e, err
}

// specs returns every endpoint's spec, by name.
func (s *Store) specs(ctx context.Context) ([]*endpointSpec, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+specColumns+` FROM hosting_endpoints ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*endpointSpec
	for rows.Next() {
		e, err := scanSpec(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// status returns an endpoint's status; an endpoint never reconciled is
// Creating.
func (s *Store) status(ctx context.Context, name string) (*endpointStatus, error) {
	st := &endpointStatus{}
	var updated int64
	err := s.DB.QueryRowContext(ctx, `SELECT observed_generation, status, failure_reason, active_config, pending_config, updated_at
		FROM hosting_endpoint_status WHERE name = ?`, name).Scan(&st.ObservedGeneration, &st.Status, &st.FailureReason, &st.ActiveConfig, &st.PendingConfig, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return &endpointStatus{Status: StatusCreating}, nil
	}
	st.UpdatedAt = time.UnixMilli(updated).UTC()
	return st, err
}

// saveStatus stores an endpoint's status.
func (s *Store) saveStatus(ctx context.Context, name string, st *endpointStatus) error {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO hosting_endpoint_status(name, observed_generation, status, failure_reason, active_config, pending_config, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET observed_generation = excluded.observed_generation, status = excluded.status,
		failure_reason = excluded.failure_reason, active_config = excluded.active_config, pending_config = excluded.pending_config, updated_at = excluded.updated_at`,
		name, st.ObservedGeneration, st.Status, st.FailureReason, st.ActiveConfig, st.PendingConfig, st.UpdatedAt.UnixMilli())
	return err
}

// deleteEndpoint forgets an endpoint's spec and status.
func (s *Store) deleteEndpoint(ctx context.Context, name string) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM hosting_endpoints WHERE name = ?`, name); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM hosting_endpoint_status WHERE name = ?`, name); err != nil {
		return err
	}
	return tx.Commit()
}

// configInUse names an endpoint whose spec or status uses config, or "".
func (s *Store) configInUse(ctx context.Context, config string) (string, error) {
	var name string
	err := s.DB.QueryRowContext(ctx, `SELECT name FROM hosting_endpoints WHERE config = ?
		UNION SELECT name FROM hosting_endpoint_status WHERE active_config = ? OR pending_config = ? LIMIT 1`, config, config, config).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return name, err
}

// saveRouting stores the routing an endpoint's holder publishes; "" when
// it takes no invocations.
func (s *Store) saveRouting(ctx context.Context, name, routing string) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE hosting_endpoint_status SET routing = ? WHERE name = ?`, routing, name)
	return err
}

// routingRow is an endpoint's status and published routing.
type routingRow struct{ name, status, routing string }

// routings returns every endpoint's status and published routing.
func (s *Store) routings(ctx context.Context) ([]routingRow, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT s.name, s.status, s.routing FROM hosting_endpoint_status s
		JOIN hosting_endpoints e ON e.name = s.name WHERE e.deleting = 0 ORDER BY s.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []routingRow
	for rows.Next() {
		var r routingRow
		if err := rows.Scan(&r.name, &r.status, &r.routing); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
