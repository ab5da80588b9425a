// Package store opens Junction's database, SQLite (the embedded default)
// or PostgreSQL (shared by several replicas), and brings its schema up to
// date. It owns the schema and the differences between the two dialects;
// the packages that use a table own its queries, written once with "?"
// placeholders in the SQL both dialects share.
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
	// SQLite lists keys and AWS credentials in the order they were made
	// by rowid; on PostgreSQL an identity column of that name does it.
	postgresOnly(`ALTER TABLE keys ADD COLUMN rowid BIGINT GENERATED BY DEFAULT AS IDENTITY`),
	postgresOnly(`ALTER TABLE aws_credentials ADD COLUMN rowid BIGINT GENERATED BY DEFAULT AS IDENTITY`),
	// The ledger's hourly roll-up: usage summed per UTC hour (the hour's
	// first millisecond) and per combination of what reports group and
	// filter by. The ledger writer adds each batch to it in the batch's
	// transaction; latency_ms is a sum, saved_usd sums counterfactual
	// minus actual cost where both are known.
	rollupTable("usage_hourly", "hour"),
	// PostgreSQL caps a b-tree entry near 2.7 kB and tags may be longer:
	// its index holds the tags' md5 instead.
	withPostgres(
		`CREATE UNIQUE INDEX usage_hourly_dims ON usage_hourly(hour, model, provider, key_id, key_name, surface, status, route, deployment, tags)`,
		`CREATE UNIQUE INDEX usage_hourly_dims ON usage_hourly(hour, model, provider, key_id, key_name, surface, status, route, deployment, md5(tags))`),
	rollupBackfill,
	// Governance: a key's team, project and own rate limits; teams and
	// their projects; budgets made through the admin API (limits in
	// nano-dollars); the daily cost of reserved capacity; the audit log
	// of admin actions.
	`ALTER TABLE keys ADD COLUMN team TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE keys ADD COLUMN project TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE keys ADD COLUMN rpm INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE keys ADD COLUMN tpm INTEGER NOT NULL DEFAULT 0`,
	`CREATE TABLE teams (
		name         TEXT PRIMARY KEY,
		description  TEXT NOT NULL DEFAULT '',
		created_at   INTEGER NOT NULL
	)`,
	`CREATE TABLE projects (
		team         TEXT NOT NULL,
		name         TEXT NOT NULL,
		description  TEXT NOT NULL DEFAULT '',
		created_at   INTEGER NOT NULL,
		PRIMARY KEY (team, name)
	)`,
	`CREATE TABLE budgets (
		id           TEXT PRIMARY KEY,
		scope        TEXT NOT NULL,
		period       TEXT NOT NULL,
		limit_nanos  INTEGER NOT NULL,
		mode         TEXT NOT NULL,
		webhook      TEXT NOT NULL DEFAULT '',
		created_at   INTEGER NOT NULL,
		updated_at   INTEGER NOT NULL
	)`,
	`CREATE TABLE reserved_capacity (
		day       INTEGER NOT NULL,
		team      TEXT NOT NULL,
		model     TEXT NOT NULL,
		tpm       INTEGER NOT NULL,
		cost_usd  REAL NOT NULL,
		PRIMARY KEY (day, team, model)
	)`,
	`CREATE TABLE audit_log (
		id           INTEGER PRIMARY KEY,
		ts           INTEGER NOT NULL,
		request_id   TEXT NOT NULL,
		key_id       TEXT NOT NULL,
		key_name     TEXT NOT NULL,
		method       TEXT NOT NULL,
		path         TEXT NOT NULL,
		resource     TEXT NOT NULL,
		status       INTEGER NOT NULL,
		request_json TEXT,
		before_json  TEXT,
		after_json   TEXT
	)`,
	`CREATE INDEX audit_log_ts ON audit_log(ts)`,
	// The ledger's daily roll-up, summed from the hourly one the same way
	// and kept beside it by the ledger writer: a report over months reads
	// a row per day and combination rather than one per hour.
	rollupTable("usage_daily", "day"),
	withPostgres(
		`CREATE UNIQUE INDEX usage_daily_dims ON usage_daily(day, model, provider, key_id, key_name, surface, status, route, deployment, tags)`,
		`CREATE UNIQUE INDEX usage_daily_dims ON usage_daily(day, model, provider, key_id, key_name, surface, status, route, deployment, md5(tags))`),
	dailyBackfill,
	// An endpoint's variant weights and instance counts set since its
	// config (UpdateWeights), as JSON; empty when it runs its config as is.
	`ALTER TABLE hosting_endpoints ADD COLUMN overrides TEXT NOT NULL DEFAULT ''`,
	// Usage Junction counted itself because the upstream reported none
	// (a stream cut, or abandoned by its client, before its usage).
	`ALTER TABLE usage ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0`,
	// Hosting as a reconciler: hosting_endpoints holds each endpoint's
	// spec (what was asked: config, deployment, capacities), numbered by
	// generation; hosting_endpoint_status holds what is, written only by
	// the replica that holds the hosting lease. The spec's old status
	// columns are no longer read.
	`ALTER TABLE hosting_endpoints ADD COLUMN generation INTEGER NOT NULL DEFAULT 1`,
	`ALTER TABLE hosting_endpoints ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0`,
	`CREATE TABLE hosting_endpoint_status (
		name                 TEXT PRIMARY KEY,
		observed_generation  INTEGER NOT NULL,
		status               TEXT NOT NULL,
		failure_reason       TEXT NOT NULL DEFAULT '',
		active_config        TEXT NOT NULL DEFAULT '',
		pending_config       TEXT NOT NULL DEFAULT '',
		updated_at           INTEGER NOT NULL
	)`,
	`INSERT INTO hosting_endpoint_status(name, observed_generation, status, failure_reason, active_config, pending_config, updated_at)
		SELECT name, 1, status, failure_reason, config, '', updated_at FROM hosting_endpoints`,
	`UPDATE hosting_endpoints SET deleting = 1 WHERE status = 'Deleting'`,
	// Which replica reconciles hosting, until when.
	`CREATE TABLE hosting_lease (
		name        TEXT PRIMARY KEY,
		holder      TEXT NOT NULL,
		expires_at  INTEGER NOT NULL
	)`,
	// The ledger's latency roll-up: answered requests (status < 400)
	// counted per UTC hour, model, surface, route, tags and latency
	// bucket (see ledger.latencyBucket), for percentiles read from
	// roll-ups. Requests recorded before it existed have no buckets.
	`CREATE TABLE usage_latency_hourly (
		hour      INTEGER NOT NULL,
		model     TEXT NOT NULL,
		surface   TEXT NOT NULL,
		route     TEXT NOT NULL,
		tags      TEXT NOT NULL,
		bucket    INTEGER NOT NULL,
		requests  INTEGER NOT NULL
	)`,
	withPostgres(
		`CREATE UNIQUE INDEX usage_latency_hourly_dims ON usage_latency_hourly(hour, model, surface, route, tags, bucket)`,
		`CREATE UNIQUE INDEX usage_latency_hourly_dims ON usage_latency_hourly(hour, model, surface, route, md5(tags), bucket)`),
	// Stored Responses API responses, per key, until they expire.
	`CREATE TABLE responses (
		id          TEXT PRIMARY KEY,
		key_id      TEXT NOT NULL,
		created_at  INTEGER NOT NULL,
		expires_at  INTEGER NOT NULL,
		response    TEXT NOT NULL,
		input       TEXT NOT NULL,
		context     TEXT NOT NULL
	)`,
	`CREATE INDEX responses_expiry ON responses(expires_at)`,
	// Batch jobs (internal/jobs/batch): files uploaded through the Files API;
	// jobs, each with its spec, status and counters and the replica that
	// runs it until lease_until; and each finished record's output line,
	// so that a job resumed after a restart skips what is done and writes
	// every record once.
	`CREATE TABLE batch_files (
		id          TEXT PRIMARY KEY,
		key_id      TEXT NOT NULL,
		filename    TEXT NOT NULL,
		purpose     TEXT NOT NULL,
		bytes       INTEGER NOT NULL,
		path        TEXT NOT NULL,
		created_at  INTEGER NOT NULL
	)`,
	`CREATE INDEX batch_files_key ON batch_files(key_id, created_at)`,
	`CREATE TABLE batch_jobs (
		id             TEXT PRIMARY KEY,
		kind           TEXT NOT NULL,
		key_id         TEXT NOT NULL,
		key_name       TEXT NOT NULL,
		tags           TEXT NOT NULL DEFAULT '{}',
		spec           TEXT NOT NULL,
		model          TEXT NOT NULL DEFAULT '',
		status         TEXT NOT NULL,
		errors         TEXT NOT NULL DEFAULT '',
		output         TEXT NOT NULL DEFAULT '{}',
		times          TEXT NOT NULL DEFAULT '{}',
		total          INTEGER NOT NULL DEFAULT 0,
		completed      INTEGER NOT NULL DEFAULT 0,
		failed         INTEGER NOT NULL DEFAULT 0,
		retries        INTEGER NOT NULL DEFAULT 0,
		input_tokens   INTEGER NOT NULL DEFAULT 0,
		output_tokens  INTEGER NOT NULL DEFAULT 0,
		created_at     INTEGER NOT NULL,
		updated_at     INTEGER NOT NULL,
		expires_at     INTEGER NOT NULL,
		owner          TEXT NOT NULL DEFAULT '',
		lease_until    INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX batch_jobs_key ON batch_jobs(key_id, created_at)`,
	`CREATE TABLE batch_records (
		job_id  TEXT NOT NULL,
		idx     INTEGER NOT NULL,
		failed  INTEGER NOT NULL,
		line    TEXT NOT NULL,
		PRIMARY KEY (job_id, idx)
	)`,
	// Autoscaling policies of endpoint variants (package autoscale), as
	// JSON, kept with the endpoint across restarts.
	`CREATE TABLE scaling_policies (
		endpoint    TEXT NOT NULL,
		variant     TEXT NOT NULL,
		spec        TEXT NOT NULL,
		updated_at  INTEGER NOT NULL,
		PRIMARY KEY (endpoint, variant)
	)`,
	// Every replica routes: the lease holder publishes each endpoint's
	// routing (fleets, weights, instance addresses and states) as JSON,
	// written when it changes; the other replicas read it.
	`ALTER TABLE hosting_endpoint_status ADD COLUMN routing TEXT NOT NULL DEFAULT ''`,
	// The async-invocation queue (package async): one row per request,
	// from queued to succeeded or failed, with its lease and its
	// notification's delivery state.
	`CREATE TABLE async_requests (
		seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
		id                  TEXT NOT NULL UNIQUE,
		endpoint            TEXT NOT NULL,
		inference_id        TEXT NOT NULL,
		input               TEXT NOT NULL,
		body                BLOB,
		output              TEXT NOT NULL,
		failure             TEXT NOT NULL,
		content_type        TEXT NOT NULL DEFAULT '',
		accept              TEXT NOT NULL DEFAULT '',
		custom_attributes   TEXT NOT NULL DEFAULT '',
		timeout_ms          INTEGER NOT NULL,
		key_id              TEXT NOT NULL DEFAULT '',
		state               TEXT NOT NULL,
		attempts            INTEGER NOT NULL DEFAULT 0,
		holder              TEXT NOT NULL DEFAULT '',
		lease_until         INTEGER NOT NULL DEFAULT 0,
		not_before          INTEGER NOT NULL DEFAULT 0,
		enqueued_at         INTEGER NOT NULL,
		expires_at          INTEGER NOT NULL,
		started_at          INTEGER NOT NULL DEFAULT 0,
		finished_at         INTEGER NOT NULL DEFAULT 0,
		error               TEXT NOT NULL DEFAULT '',
		result_content_type TEXT NOT NULL DEFAULT '',
		success_webhook     TEXT NOT NULL DEFAULT '',
		error_webhook       TEXT NOT NULL DEFAULT '',
		notify              TEXT NOT NULL DEFAULT '',
		notify_attempts     INTEGER NOT NULL DEFAULT 0,
		notify_at           INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX async_requests_state ON async_requests(state, endpoint, seq)`,
	`CREATE INDEX async_requests_notify ON async_requests(notify, notify_at)`,
	// The autoscaler's scaling activities (package autoscale), as
	// DescribeScalingActivities reports them: one row per change of a
	// variant's desired instance count, from InProgress to Successful,
	// Overridden or Failed.
	`CREATE TABLE scaling_activities (
		id              TEXT PRIMARY KEY,
		endpoint        TEXT NOT NULL,
		variant         TEXT NOT NULL,
		started_at      INTEGER NOT NULL,
		ended_at        INTEGER NOT NULL DEFAULT 0,
		status          TEXT NOT NULL,
		from_count      INTEGER NOT NULL,
		to_count        INTEGER NOT NULL,
		cause           TEXT NOT NULL,
		status_message  TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE INDEX scaling_activities_endpoint ON scaling_activities(endpoint, started_at)`,
	// The latency roll-up per UTC day, kept beside the hourly one by the
	// ledger writer: percentiles over weeks read a row per day, bucket
	// and combination rather than one per hour.
	`CREATE TABLE usage_latency_daily (
		day       INTEGER NOT NULL,
		model     TEXT NOT NULL,
		surface   TEXT NOT NULL,
		route     TEXT NOT NULL,
		tags      TEXT NOT NULL,
		bucket    INTEGER NOT NULL,
		requests  INTEGER NOT NULL
	)`,
	withPostgres(
		`CREATE UNIQUE INDEX usage_latency_daily_dims ON usage_latency_daily(day, model, surface, route, tags, bucket)`,
		`CREATE UNIQUE INDEX usage_latency_daily_dims ON usage_latency_daily(day, model, surface, route, md5(tags), bucket)`),
	latencyDailyBackfill,
}

// latencyDailyBackfill sums the hourly latency roll-up into the daily one.
const latencyDailyBackfill = `INSERT INTO usage_latency_daily(day, model, surface, route, tags, bucket, requests)
	SELECT hour / 86400000 * 86400000, model, surface, route, tags, bucket, SUM(requests)
	FROM usage_latency_hourly GROUP BY 1, 2, 3, 4, 5, 6`

// rollupBackfill rolls up the usage recorded before the roll-up existed.
const rollupBackfill = `INSERT INTO usage_hourly(hour, key_id, key_name, tags, surface, model, provider, route, deployment, status,
		requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd, unpriced, latency_ms, saved_usd, counterfactual_usd)
	SELECT ts / 3600000 * 3600000, key_id, key_name, tags, surface, model, provider, route, deployment, status,
		COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens),
		COALESCE(SUM(cost_usd), 0), SUM(CASE WHEN cost_usd IS NULL AND status < 400 THEN 1 ELSE 0 END), SUM(latency_ms),
		COALESCE(SUM(CASE WHEN counterfactual_cost_usd IS NOT NULL AND cost_usd IS NOT NULL THEN counterfactual_cost_usd - cost_usd END), 0),
		COALESCE(SUM(counterfactual_cost_usd), 0)
	FROM usage GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10`

// dailyBackfill sums the hourly roll-up into the daily one.
const dailyBackfill = `INSERT INTO usage_daily(day, key_id, key_name, tags, surface, model, provider, route, deployment, status,
		requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd, unpriced, latency_ms, saved_usd, counterfactual_usd)
	SELECT hour / 86400000 * 86400000, key_id, key_name, tags, surface, model, provider, route, deployment, status,
		SUM(requests), SUM(errors), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens),
		SUM(cost_usd), SUM(unpriced), SUM(latency_ms), SUM(saved_usd), SUM(counterfactual_usd)
	FROM usage_hourly GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10`

// Open opens the database named by dsn and brings its schema up to date.
// A postgres:// or postgresql:// URL opens PostgreSQL; anything else is
// the path of a SQLite file, made (with its directory) if need be.
func Open(ctx context.Context, dsn string) (*sql.DB, error) {
	var db *sql.DB
	var err error
	name := dsn
	if IsPostgresURL(dsn) {
		if db, err = openPostgres(ctx, dsn); err != nil {
			return nil, err
		}
		name = "postgres database"
	} else if db, err = openSQLite(dsn); err != nil {
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", name, err)
	}
	return db, nil
}

func openSQLite(path string) (*sql.DB, error) {
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
	return db, nil
}

// migrationLock is the PostgreSQL advisory lock that serialises
// migrations: replicas starting together against one database take
// turns, and each finds the work of the one before it done.
const migrationLock = 0x6a756e6374696f6e // "junction"

// migrate applies the migrations the database has not seen, one
// transaction each.
func migrate(ctx context.Context, db *sql.DB) error {
	d := DialectOf(db)
	for {
		done, err := migrateOne(ctx, db, d)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration, if any, and reports whether
// there was none. On PostgreSQL the transaction holds migrationLock from
// its start, before it reads the version, so two replicas never apply the
// same migration; the lock is released by the commit or rollback.
func migrateOne(ctx context.Context, db *sql.DB, d Dialect) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	versions := `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`
	if d == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(migrationLock)); err != nil {
			return false, err
		}
		versions = `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)`
	}
	if _, err := tx.ExecContext(ctx, versions); err != nil {
		return false, err
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return false, err
	}
	if have >= len(migrations) {
		// Up to date, or migrated by a newer Junction: a replica not yet
		// upgraded keeps working against the newer schema.
		return true, tx.Commit()
	}
	if stmt := forDialect(migrations[have], d); stmt != "" {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, fmt.Errorf("migration %d: %w", have+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version) VALUES (?)`, have+1); err != nil {
		return false, err
	}
	return false, tx.Commit()
}

// rollupTable is the DDL of a ledger roll-up: usage summed per time bucket
// (the bucket's first millisecond, in column bucket) and per combination
// of what reports group and filter by.
func rollupTable(table, bucket string) string {
	return `CREATE TABLE ` + table + ` (
		` + bucket + ` INTEGER NOT NULL,
		key_id              TEXT NOT NULL,
		key_name            TEXT NOT NULL,
		tags                TEXT NOT NULL,
		surface             TEXT NOT NULL,
		model               TEXT NOT NULL,
		provider            TEXT NOT NULL,
		route               TEXT NOT NULL,
		deployment          TEXT NOT NULL,
		status              INTEGER NOT NULL,
		requests            INTEGER NOT NULL,
		errors              INTEGER NOT NULL,
		input_tokens        INTEGER NOT NULL,
		output_tokens       INTEGER NOT NULL,
		cached_tokens       INTEGER NOT NULL,
		cost_usd            REAL NOT NULL,
		unpriced            INTEGER NOT NULL,
		latency_ms          REAL NOT NULL,
		saved_usd           REAL NOT NULL,
		counterfactual_usd  REAL NOT NULL
	)`
}
