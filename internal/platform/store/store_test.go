package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.DSN(t)
			if b.Name == "sqlite" {
				dsn = filepath.Join(filepath.Dir(dsn), "sub", "junction.db")
			}
			db := open(t, dsn)
			if got := DialectOf(db).String(); got != b.Name {
				t.Fatalf("dialect %s", got)
			}
			if _, err := db.Exec(`INSERT INTO keys(id,name,hash,prefix,created_at) VALUES ('k1','n','h','p',1)`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			db = open(t, dsn)
			var n, v int
			db.QueryRow(`SELECT COUNT(*) FROM keys`).Scan(&n)
			db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v)
			if n != 1 || v != len(migrations) {
				t.Fatalf("rows=%d version=%d, want 1 and %d", n, v, len(migrations))
			}
		})
	}
}

// Replicas that start together against one empty database take turns:
// every one opens, and each migration ran once.
func TestConcurrentMigrationsOnPostgres(t *testing.T) {
	dsn := storetest.Postgres(t)
	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Go(func() {
			db, err := Open(context.Background(), dsn)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	db := open(t, dsn)
	var rows, max int
	db.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&rows, &max)
	if rows != len(migrations) || max != len(migrations) {
		t.Fatalf("%d versions recorded, highest %d; want %d", rows, max, len(migrations))
	}
}

// Both dialects keep the types the SQLite schema means: 64-bit integers,
// doubles, bytes, booleans as 0 and 1, ids numbered on insert.
func TestTypesRoundTrip(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			db := open(t, b.DSN(t))
			blob := []byte{0, 1, 2, 0xff}
			for range 2 {
				if _, err := db.Exec(`INSERT INTO prompt_feedback(created_at, prompt, model, good, embedding) VALUES (?, ?, ?, ?, ?)`,
					int64(1)<<40, "it's a '?'", "m", true, blob); err != nil {
					t.Fatal(err)
				}
			}
			var id, created int64
			var prompt string
			var good bool
			var got []byte
			var n int
			err := db.QueryRow(`SELECT id, created_at, prompt, good, embedding, length(embedding) FROM prompt_feedback ORDER BY id DESC LIMIT 1`).
				Scan(&id, &created, &prompt, &good, &got, &n)
			if err != nil {
				t.Fatal(err)
			}
			if id != 2 || created != 1<<40 || prompt != "it's a '?'" || !good || !slices.Equal(got, blob) || n != 4 {
				t.Fatalf("read back %d %d %q %v %v %d", id, created, prompt, good, got, n)
			}
			var sum int64
			var avg float64
			if err := db.QueryRow(`SELECT SUM(created_at), AVG(good) FROM prompt_feedback`).Scan(&sum, &avg); err != nil || sum != 2<<40 || avg != 1 {
				t.Fatalf("sum %d avg %v: %v", sum, avg, err)
			}
		})
	}
}

func TestIsUniqueViolation(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			db := open(t, b.DSN(t))
			insert := func(id, hash string) error {
				_, err := db.Exec(`INSERT INTO keys(id,name,hash,prefix,created_at) VALUES (?,'n',?,'p',1)`, id, hash)
				return err
			}
			if err := insert("k1", "h1"); err != nil {
				t.Fatal(err)
			}
			if err := insert("k1", "h2"); !IsUniqueViolation(err) {
				t.Fatalf("duplicate primary key: %v", err)
			}
			if err := insert("k2", "h1"); !IsUniqueViolation(fmt.Errorf("wrapped: %w", err)) {
				t.Fatalf("duplicate unique column: %v", err)
			}
			_, err := db.Exec(`INSERT INTO nope VALUES (1)`)
			if err == nil || IsUniqueViolation(err) || IsUniqueViolation(nil) {
				t.Fatalf("another error is not a unique violation: %v", err)
			}
		})
	}
}

func TestJSONText(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			db := open(t, b.DSN(t))
			if _, err := db.Exec(`INSERT INTO keys(id,name,hash,prefix,tags,created_at) VALUES ('k1','n','h','p',?,1)`,
				`{"team":"search","odd \"name\"":"x"}`); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]sql.NullString{
				"team":         {String: "search", Valid: true},
				`odd "name"`:   {String: "x", Valid: true},
				"missing":      {},
				"$.team":       {},
				"team' OR '1'": {},
			} {
				expr, arg := DialectOf(db).JSONText("tags", name)
				var got sql.NullString
				if err := db.QueryRow(`SELECT `+expr+` FROM keys`, arg).Scan(&got); err != nil {
					t.Fatal(name, err)
				}
				if got != want {
					t.Errorf("%s: %+v, want %+v", name, got, want)
				}
			}
		})
	}
}

func TestCopyFrom(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			db := open(t, b.DSN(t))
			const rows = 1000 // more than one multi-row statement's worth, and a remainder
			n, err := CopyFrom(context.Background(), db, "hosting_events", []string{"endpoint", "ts", "message"},
				func(yield func([]any) bool) {
					for i := range rows {
						if !yield([]any{"e", int64(i), fmt.Sprint("m", i)}) {
							return
						}
					}
				})
			if err != nil || n != rows {
				t.Fatalf("copied %d: %v", n, err)
			}
			var count, sum int64
			var last string
			db.QueryRow(`SELECT COUNT(*), SUM(ts) FROM hosting_events`).Scan(&count, &sum)
			db.QueryRow(`SELECT message FROM hosting_events ORDER BY id DESC LIMIT 1`).Scan(&last)
			if count != rows || sum != rows*(rows-1)/2 || last != "m999" {
				t.Fatalf("count %d sum %d last %q", count, sum, last)
			}
		})
	}
}

func TestRebindText(t *testing.T) {
	cases := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c IN (?, ?)`, `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`},
		{`SELECT '?', ? FROM t`, `SELECT '?', $1 FROM t`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`SELECT E'\'?', ?`, `SELECT E'\'?', $1`},
		{`SELECT 'back\', ?`, `SELECT 'back\', $1`}, // a standard string: the backslash is a character
		{`SELECT "odd?col" FROM t WHERE x = ?`, `SELECT "odd?col" FROM t WHERE x = $1`},
		{"SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
		{`SELECT /* a /* nested? */ comment? */ ?`, `SELECT /* a /* nested? */ comment? */ $1`},
		{`SELECT $$what?$$, $tag$ ? $x$ ? $tag$, ?`, `SELECT $$what?$$, $tag$ ? $x$ ? $tag$, $1`},
		{`SELECT a$b, ?`, `SELECT a$b, $1`},
		{`SELECT '?`, `SELECT '?`}, // unterminated: left alone
		{`?`, `$1`},
	}
	for _, c := range cases {
		if got := rebindText(c.in); got != c.want {
			t.Errorf("rebindText(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	// Every migration and query Junction writes has as many $n as ?.
	q := strings.Repeat("?,", 12) + "?"
	if got := rebindText(q); !strings.HasSuffix(got, "$13") {
		t.Fatalf("numbering: %s", got)
	}
}

func TestPostgresDDL(t *testing.T) {
	cases := []struct{ in, want string }{
		{`CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, x REAL, b BLOB NOT NULL, s TEXT DEFAULT 'REAL INTEGER')`,
			`CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT NOT NULL, x DOUBLE PRECISION, b BYTEA NOT NULL, s TEXT DEFAULT 'REAL INTEGER')`},
		{"create table t (\n\tid   integer  primary\n key autoincrement,\n\treal_name TEXT, \"integer\" integer)",
			"create table t (\n\tid   BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n\treal_name TEXT, \"integer\" BIGINT)"},
		{`CREATE TABLE g (id TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (id, version))`,
			`CREATE TABLE g (id TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (id, version))`},
		{`ALTER TABLE usage ADD COLUMN counterfactual_cost_usd REAL`, `ALTER TABLE usage ADD COLUMN counterfactual_cost_usd DOUBLE PRECISION`},
		{`CREATE INDEX usage_ts ON usage(ts)`, `CREATE INDEX usage_ts ON usage(ts)`},
		{`INSERT INTO t SELECT CAST(x AS REAL) FROM u`, `INSERT INTO t SELECT CAST(x AS REAL) FROM u`},
	}
	for _, c := range cases {
		if got := postgresDDL(c.in); got != c.want {
			t.Errorf("postgresDDL(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestForDialect(t *testing.T) {
	both := withPostgres("CREATE INDEX i ON t(a)", "CREATE INDEX i ON t(md5(a))")
	only := postgresOnly("ALTER TABLE t ADD COLUMN rowid BIGINT")
	for _, c := range []struct {
		m    string
		d    Dialect
		want string
	}{
		{both, SQLite, "CREATE INDEX i ON t(a)"},
		{both, Postgres, "CREATE INDEX i ON t(md5(a))"},
		{only, SQLite, ""},
		{only, Postgres, "ALTER TABLE t ADD COLUMN rowid BIGINT"},
		{"CREATE TABLE t (x REAL)", SQLite, "CREATE TABLE t (x REAL)"},
		{"CREATE TABLE t (x REAL)", Postgres, "CREATE TABLE t (x DOUBLE PRECISION)"},
	} {
		if got := forDialect(c.m, c.d); got != c.want {
			t.Errorf("forDialect(%q, %s) = %q, want %q", c.m, c.d, got, c.want)
		}
	}
}

// The rebinding of the ledger's insert, the hottest statement: cached,
// it costs a map lookup per statement prepared (once per batch).
func BenchmarkRebind(b *testing.B) {
	const q = `INSERT INTO usage(ts, request_id, key_id, key_name, tags, surface, model, provider, upstream_model,
	stream, input_tokens, output_tokens, cached_tokens, status, error_type, latency_ms, ttft_ms, cost_usd,
	route, deployment, attempts, route_reason, counterfactual_cost_usd, guardrail)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			rebind(q)
		}
	})
	b.Run("uncached", func(b *testing.B) {
		for b.Loop() {
			rebindText(q)
		}
	})
}

// The roll-up's migration sums the usage recorded before it: run again
// here over rows inserted as an older Junction wrote them.
func TestRollupBackfill(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			db := open(t, b.DSN(t))
			const hour = 3600000
			for i, r := range []struct {
				ts          int64
				status      int
				cost, cf    any
				model, tags string
			}{
				{5 * hour, 200, 0.5, nil, "a", `{}`},
				{5*hour + 10, 200, 0.25, 1.0, "a", `{}`},
				{5*hour + 20, 200, nil, nil, "a", `{}`}, // unpriced
				{5*hour + 30, 502, nil, nil, "a", `{}`}, // failed, so not unpriced
				{6*hour - 1, 200, 0.125, nil, "a", `{"team":"x"}`},
				{6 * hour, 200, 1.0, 2.0, "a", `{}`},
				{6 * hour, 429, nil, nil, "b", `{}`},
			} {
				if _, err := db.Exec(`INSERT INTO usage(ts, request_id, key_id, key_name, tags, surface, model, provider, upstream_model,
					stream, input_tokens, output_tokens, cached_tokens, status, error_type, latency_ms, cost_usd, counterfactual_cost_usd)
					VALUES (?, ?, 'k', 'n', ?, 's', ?, 'p', ?, 0, 10, 5, 1, ?, '', 2.5, ?, ?)`,
					r.ts, fmt.Sprint("r", i), r.tags, r.model, r.model, r.status, r.cost, r.cf); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Exec(`DELETE FROM usage_hourly`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(forDialect(rollupBackfill, DialectOf(db))); err != nil {
				t.Fatal(err)
			}
			type row struct {
				hour                                   int64
				model, tags                            string
				status                                 int
				requests, errors, in, out, cached, unp int64
				cost, latency, saved, cf               float64
			}
			rows, err := db.Query(`SELECT hour, model, tags, status, requests, errors, input_tokens, output_tokens, cached_tokens, unpriced,
				cost_usd, latency_ms, saved_usd, counterfactual_usd FROM usage_hourly ORDER BY hour, model, tags, status`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.hour, &r.model, &r.tags, &r.status, &r.requests, &r.errors, &r.in, &r.out, &r.cached, &r.unp,
					&r.cost, &r.latency, &r.saved, &r.cf); err != nil {
					t.Fatal(err)
				}
				got = append(got, r)
			}
			want := []row{
				{5 * hour, "a", `{"team":"x"}`, 200, 1, 0, 10, 5, 1, 0, 0.125, 2.5, 0, 0},
				{5 * hour, "a", `{}`, 200, 3, 0, 30, 15, 3, 1, 0.75, 7.5, 0.75, 1},
				{5 * hour, "a", `{}`, 502, 1, 1, 10, 5, 1, 0, 0, 2.5, 0, 0},
				{6 * hour, "a", `{}`, 200, 1, 0, 10, 5, 1, 0, 1, 2.5, 1, 2},
				{6 * hour, "b", `{}`, 429, 1, 1, 10, 5, 1, 0, 0, 2.5, 0, 0},
			}
			if !slices.Equal(got, want) {
				t.Fatalf("roll-up\n got %+v\nwant %+v", got, want)
			}

			// The daily roll-up sums the hourly one.
			if _, err := db.Exec(`DELETE FROM usage_daily`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(forDialect(dailyBackfill, DialectOf(db))); err != nil {
				t.Fatal(err)
			}
			var days, requests, errs int64
			var cost, cf float64
			if err := db.QueryRow(`SELECT COUNT(*), SUM(requests), SUM(errors), SUM(cost_usd), SUM(counterfactual_usd) FROM usage_daily WHERE day = 0`).
				Scan(&days, &requests, &errs, &cost, &cf); err != nil {
				t.Fatal(err)
			}
			if days != 4 || requests != 7 || errs != 2 || cost != 1.875 || cf != 3 {
				t.Fatalf("daily roll-up: %d rows, %d requests, %d errors, $%v, $%v counterfactual", days, requests, errs, cost, cf)
			}
		})
	}
}

// The daily latency roll-up's migration sums the hourly one kept before
// it: run again here over hourly rows.
func TestLatencyDailyBackfill(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			db := open(t, b.DSN(t))
			const hour, day = 3600000, 24 * 3600000
			for _, r := range []struct {
				hour          int64
				model, tags   string
				bucket, count int
			}{
				{5 * hour, "a", `{}`, 40, 3},
				{6 * hour, "a", `{}`, 40, 2},   // same day, model, tags and bucket: added
				{6 * hour, "a", `{}`, 41, 1},   // another bucket
				{7 * hour, "b", `{}`, 40, 4},   // another model
				{day + hour, "a", `{}`, 40, 5}, // the next day
			} {
				if _, err := db.Exec(`INSERT INTO usage_latency_hourly(hour, model, surface, route, tags, bucket, requests)
					VALUES (?, ?, 's', '', ?, ?, ?)`, r.hour, r.model, r.tags, r.bucket, r.count); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Exec(`DELETE FROM usage_latency_daily`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(forDialect(latencyDailyBackfill, DialectOf(db))); err != nil {
				t.Fatal(err)
			}
			rows, err := db.Query(`SELECT day, model, bucket, requests FROM usage_latency_daily ORDER BY day, model, bucket`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var d, bucket, n int64
				var model string
				if err := rows.Scan(&d, &model, &bucket, &n); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%d %s %d %d", d/day, model, bucket, n))
			}
			if want := []string{"0 a 40 5", "0 a 41 1", "0 b 40 4", "1 a 40 5"}; !slices.Equal(got, want) {
				t.Fatalf("daily latency roll-up %q, want %q", got, want)
			}
		})
	}
}
