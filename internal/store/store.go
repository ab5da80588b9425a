// Package store opens Junction's SQLite database and brings its schema up
// to date. It owns the schema; the packages that use a table own its
// queries.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// migrations are applied in order; each runs once, recorded in
// schema_migrations. Append only.
var migrations = []string{
	`CREATE TABLE keys (
		id          TEXT PRIMARY KEY,
		name        TEXT NOT NULL,
		hash        TEXT NOT NULL UNIQUE,
		prefix      TEXT NOT NULL,
		tags        TEXT NOT NULL DEFAULT '{}',
		admin       INTEGER NOT NULL DEFAULT 0,
		created_at  INTEGER NOT NULL,
		revoked_at  INTEGER
	)`,
	`CREATE TABLE usage (
		id              INTEGER PRIMARY KEY,
		ts              INTEGER NOT NULL,
		request_id      TEXT NOT NULL,
		key_id          TEXT NOT NULL,
		key_name        TEXT NOT NULL,
		tags            TEXT NOT NULL DEFAULT '{}',
		surface         TEXT NOT NULL,
		model           TEXT NOT NULL,
		provider        TEXT NOT NULL,
		upstream_model  TEXT NOT NULL,
		stream          INTEGER NOT NULL,
		input_tokens    INTEGER NOT NULL,
		output_tokens   INTEGER NOT NULL,
		cached_tokens   INTEGER NOT NULL,
		status          INTEGER NOT NULL,
		error_type      TEXT NOT NULL,
		latency_ms      REAL NOT NULL,
		ttft_ms         REAL,
		cost_usd        REAL
	)`,
	`CREATE INDEX usage_ts ON usage(ts)`,
	`CREATE UNIQUE INDEX usage_request ON usage(request_id)`,
	`ALTER TABLE usage ADD COLUMN route TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE usage ADD COLUMN deployment TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE usage ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE usage ADD COLUMN route_reason TEXT NOT NULL DEFAULT ''`,
	// AWS access-key pairs issued for a Junction key (SigV4 surfaces).
	// The secret is AES-GCM sealed under the data directory's master.key.
	`CREATE TABLE aws_credentials (
		access_key_id      TEXT PRIMARY KEY,
		key_id             TEXT NOT NULL REFERENCES keys(id),
		secret_ciphertext  BLOB NOT NULL,
		created_at         INTEGER NOT NULL,
		revoked_at         INTEGER
	)`,
	`CREATE INDEX aws_credentials_key ON aws_credentials(key_id)`,
	`ALTER TABLE usage ADD COLUMN counterfactual_cost_usd REAL`,
	// Labelled prompts for the prompt router's nearest-neighbour scorer;
	// embedding is the prompt's vector as little-endian float32s.
	`CREATE TABLE prompt_feedback (
		id          INTEGER PRIMARY KEY,
		created_at  INTEGER NOT NULL,
		prompt      TEXT NOT NULL,
		model       TEXT NOT NULL,
		good        INTEGER NOT NULL,
		embedding   BLOB NOT NULL
	)`,
	// Guardrail policies made through /api/v1/guardrails: version 0 is
	// the DRAFT, numbered versions are frozen copies of it.
	`CREATE TABLE guardrails (
		id          TEXT NOT NULL,
		version     INTEGER NOT NULL,
		name        TEXT NOT NULL,
		policy      TEXT NOT NULL,
		created_at  INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL,
		PRIMARY KEY (id, version)
	)`,
	`ALTER TABLE usage ADD COLUMN guardrail TEXT NOT NULL DEFAULT ''`,
	// Self-hosted endpoints: models, endpoint configs and endpoints are
	// stored as JSON specs; events are each endpoint's history.
	`CREATE TABLE hosting_models (
		name        TEXT PRIMARY KEY,
		spec        TEXT NOT NULL,
		created_at  INTEGER NOT NULL
	)`,
	`CREATE TABLE hosting_endpoint_configs (
		name        TEXT PRIMARY KEY,
		spec        TEXT NOT NULL,
		created_at  INTEGER NOT NULL
	)`,
	`CREATE TABLE hosting_endpoints (
		name            TEXT PRIMARY KEY,
		config          TEXT NOT NULL,
		status          TEXT NOT NULL,
		failure_reason  TEXT NOT NULL DEFAULT '',
		pending_config  TEXT NOT NULL DEFAULT '',
		deployment      TEXT NOT NULL DEFAULT '',
		created_at      INTEGER NOT NULL,
		updated_at      INTEGER NOT NULL
	)`,
	`CREATE TABLE hosting_events (
		id        INTEGER PRIMARY KEY,
		endpoint  TEXT NOT NULL,
		ts        INTEGER NOT NULL,
		message   TEXT NOT NULL
	)`,
	`CREATE INDEX hosting_events_endpoint ON hosting_events(endpoint, id)`,
	// Instance time, metered in segments: what hosting costs.
	`CREATE TABLE hosting_usage (
		id             INTEGER PRIMARY KEY,
		endpoint       TEXT NOT NULL,
		variant        TEXT NOT NULL,
		instance_id    TEXT NOT NULL,
		instance_type  TEXT NOT NULL,
		start_ts       INTEGER NOT NULL,
		end_ts         INTEGER NOT NULL,
		usd_per_hour   REAL,
		cost_usd       REAL
	)`,
	`CREATE INDEX hosting_usage_ts ON hosting_usage(end_ts)`,
	`CREATE INDEX hosting_usage_instance ON hosting_usage(instance_id, end_ts)`,
	// Capacity measurements of self-hosted endpoints (junction bench
	// endpoint): the best step under a latency target, and every step.
	`CREATE TABLE capacity_measurements (
		id                 INTEGER PRIMARY KEY,
		endpoint           TEXT NOT NULL,
		config             TEXT NOT NULL,
		variant            TEXT NOT NULL DEFAULT '',
		instance_type      TEXT NOT NULL,
		instance_count     INTEGER NOT NULL,
		latency_target_ms  INTEGER NOT NULL,
		rps                REAL NOT NULL,
		rps_per_instance   REAL NOT NULL,
		p50_ms             REAL NOT NULL,
		p95_ms             REAL NOT NULL,
		p99_ms             REAL NOT NULL,
		concurrency        INTEGER NOT NULL,
		step_ms            INTEGER NOT NULL,
		stopped            TEXT NOT NULL DEFAULT '',
		usd_per_hour       REAL,
		measured_at        INTEGER NOT NULL,
		steps              TEXT NOT NULL
	)`,
}

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	// SQLite has one writer; a small pool avoids lock contention.
	db.SetMaxOpenConns(4)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return db, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return err
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return err
	}
	for v := have; v < len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version) VALUES (?)`, v+1); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}
