package capacity

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Store keeps measurements in Junction's database (the table
// capacity_measurements; internal/platform/store owns the schema).
type Store struct {
	DB *sql.DB
}

const columns = `id, endpoint, config, variant, instance_type, instance_count, latency_target_ms, rps, rps_per_instance,
	p50_ms, p95_ms, p99_ms, concurrency, step_ms, stopped, usd_per_hour, measured_at, steps`

// Add validates m and stores it, setting m.ID; a zero MeasuredAt becomes
// now.
func (s *Store) Add(ctx context.Context, m *Measurement) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if m.MeasuredAt.IsZero() {
		m.MeasuredAt = time.Now()
	}
	m.MeasuredAt = m.MeasuredAt.UTC().Truncate(time.Millisecond)
	steps, err := json.Marshal(m.Steps)
	if err != nil {
		return err
	}
	var price any
	if m.USDPerHour > 0 {
		price = m.USDPerHour
	}
	// RETURNING rather than LastInsertId: the one form SQLite and
	// PostgreSQL share.
	err = s.DB.QueryRowContext(ctx, `INSERT INTO capacity_measurements(endpoint, config, variant, instance_type, instance_count,
		latency_target_ms, rps, rps_per_instance, p50_ms, p95_ms, p99_ms, concurrency, step_ms, stopped, usd_per_hour, measured_at, steps)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		m.Endpoint, m.Config, m.Variant, m.InstanceType, m.InstanceCount, m.LatencyTargetMS, m.RPS, m.RPSPerInstance,
		m.P50MS, m.P95MS, m.P99MS, m.Concurrency, m.StepMS, m.Stopped, price, m.MeasuredAt.UnixMilli(), string(steps)).Scan(&m.ID)
	if err != nil {
		return fmt.Errorf("store capacity measurement: %w", err)
	}
	return nil
}

// List returns up to limit of an endpoint's measurements, latest first.
func (s *Store) List(ctx context.Context, endpoint string, limit int) ([]*Measurement, error) {
	return s.query(ctx, `SELECT `+columns+` FROM capacity_measurements WHERE endpoint = ?
		ORDER BY measured_at DESC, id DESC LIMIT ?`, endpoint, limit)
}

// Latest returns the measurement of an endpoint that fits a latency
// target of maxTargetMS best: of those measured at that target or a
// stricter one, the ones at the loosest such target, and of them the
// most recent. (Capacity measured at a looser target overstates what an
// instance serves; at a stricter one it understates it.) With maxTargetMS
// 0 it is simply the most recent. It returns nil when none fits.
func (s *Store) Latest(ctx context.Context, endpoint string, maxTargetMS int) (*Measurement, error) {
	q := `SELECT ` + columns + ` FROM capacity_measurements WHERE endpoint = ?`
	args := []any{endpoint}
	if maxTargetMS > 0 {
		q += ` AND latency_target_ms <= ? ORDER BY latency_target_ms DESC, measured_at DESC, id DESC LIMIT 1`
		args = append(args, maxTargetMS)
	} else {
		q += ` ORDER BY measured_at DESC, id DESC LIMIT 1`
	}
	list, err := s.query(ctx, q, args...)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return list[0], nil
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]*Measurement, error) {
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read capacity measurements: %w", err)
	}
	defer rows.Close()
	out := []*Measurement{}
	for rows.Next() {
		var (
			m     Measurement
			price sql.NullFloat64
			at    int64
			steps string
		)
		if err := rows.Scan(&m.ID, &m.Endpoint, &m.Config, &m.Variant, &m.InstanceType, &m.InstanceCount, &m.LatencyTargetMS,
			&m.RPS, &m.RPSPerInstance, &m.P50MS, &m.P95MS, &m.P99MS, &m.Concurrency, &m.StepMS, &m.Stopped, &price, &at, &steps); err != nil {
			return nil, err
		}
		m.USDPerHour = price.Float64
		m.MeasuredAt = time.UnixMilli(at).UTC()
		if err := json.Unmarshal([]byte(steps), &m.Steps); err != nil {
			return nil, fmt.Errorf("capacity measurement %d: steps: %w", m.ID, err)
		}
		out = append(out, &m)
	}
	return out, rows.Err()
}
