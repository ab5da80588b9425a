package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// IsPostgresURL reports whether dsn names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openPostgres connects to PostgreSQL through pgx, behind a driver that
// accepts the "?" placeholders Junction's SQL is written with.
func openPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := sql.OpenDB(&pgConnector{inner: stdlib.GetConnector(*cfg)})
	// Replicas share the server's connection limit (100 by default):
	// a modest pool each leaves room for several.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return db, nil
}

// pgDriver is the database/sql driver of databases openPostgres returns;
// DialectOf recognises PostgreSQL by it. Open is there for the interface:
// Junction opens through a connector.
type pgDriver struct{}

var thePGDriver = &pgDriver{}

func (*pgDriver) Open(dsn string) (driver.Conn, error) {
	c, err := thePGDriver.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return c.Connect(ctx)
}

func (*pgDriver) OpenConnector(dsn string) (driver.Connector, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return &pgConnector{inner: stdlib.GetConnector(*cfg)}, nil
}

// pgConnector makes pgx connections and wraps each in a pgConn.
type pgConnector struct{ inner driver.Connector }

func (c *pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgConn{conn.(*stdlib.Conn)}, nil
}

func (c *pgConnector) Driver() driver.Driver { return thePGDriver }

// pgConn is a pgx connection whose statements are rebound from "?" to
// PostgreSQL's "$1".."$n" on their way in. Everything else (transactions,
// pings, session resets, argument checks) is pgx's own.
type pgConn struct{ *stdlib.Conn }

func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(context.Background(), rebind(query))
}

func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// CheckNamedValue passes arguments to pgx as they are, except booleans:
// the schema, written for SQLite, keeps them in integer columns as 0 and
// 1, which is what SQLite's driver stores for a Go bool too.
func (c *pgConn) CheckNamedValue(nv *driver.NamedValue) error {
	if b, ok := nv.Value.(bool); ok {
		nv.Value = int64(0)
		if b {
			nv.Value = int64(1)
		}
	}
	return nil
}

// Rebinding is cached by query text. Junction's queries are constants or
// built from a handful of shapes, so the cache stays small; the bound is a
// guard against a caller that builds unbounded query texts, which are
// then rebound each time instead of kept.
var (
	rebound      sync.Map // query → rebound query
	reboundCount atomic.Int64
)

const maxRebound = 4096

// rebind returns query with its "?" placeholders numbered for
// PostgreSQL, from the cache when it has been seen before.
func rebind(query string) string {
	if v, ok := rebound.Load(query); ok {
		return v.(string)
	}
	out := rebindText(query)
	if reboundCount.Load() < maxRebound {
		if _, loaded := rebound.LoadOrStore(query, out); !loaded {
			reboundCount.Add(1)
		}
	}
	return out
}

// rebindText numbers each "?" placeholder of query as $1, $2, ... A "?"
// inside a string literal, a quoted identifier, a dollar-quoted string or
// a comment is left alone. (PostgreSQL's jsonb operators ?, ?| and ?&
// therefore cannot be written bare in Junction's SQL; use the functions
// jsonb_exists and its kin.)
func rebindText(query string) string {
	if strings.IndexByte(query, '?') < 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	last := 0 // query[last:i] is yet to be copied
	for i := 0; i < len(query); {
		switch c := query[i]; {
		case c == '\'':
			i = skipQuoted(query, i, '\'', i > 0 && (query[i-1] == 'E' || query[i-1] == 'e') && (i < 2 || !identByte(query[i-2])))
		case c == '"':
			i = skipQuoted(query, i, '"', false)
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			if j := strings.IndexByte(query[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(query)
			}
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			i = skipBlockComment(query, i)
		case c == '$' && (i == 0 || !identByte(query[i-1])):
			i = skipDollarQuoted(query, i)
		case c == '?':
			n++
			b.WriteString(query[last:i])
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			i++
			last = i
		default:
			i++
		}
	}
	b.WriteString(query[last:])
	return b.String()
}

func identByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// skipQuoted returns the index just past the quoted text that starts at
// query[i] (the opening quote). A doubled quote stands for one; with
// backslashes (in an E'...' string), a backslash escapes the next byte.
func skipQuoted(query string, i int, quote byte, backslashes bool) int {
	for j := i + 1; j < len(query); j++ {
		switch query[j] {
		case '\\':
			if backslashes {
				j++
			}
		case quote:
			if j+1 < len(query) && query[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(query)
}

// skipBlockComment returns the index just past the /* comment */ that
// starts at query[i]; PostgreSQL's block comments nest.
func skipBlockComment(query string, i int) int {
	depth := 0
	for j := i; j+1 < len(query); j++ {
		switch {
		case query[j] == '/' && query[j+1] == '*':
			depth++
			j++
		case query[j] == '*' && query[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(query)
}

// skipDollarQuoted returns the index just past the $tag$...$tag$ string
// that starts at query[i], or i+1 when the $ does not open one.
func skipDollarQuoted(query string, i int) int {
	j := i + 1
	for j < len(query) && query[j] != '$' {
		c := query[j]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || j > i+1 && c >= '0' && c <= '9') {
			return i + 1 // $1, or a $ in an identifier: not a quote
		}
		j++
	}
	if j >= len(query) {
		return i + 1
	}
	tag := query[i : j+1]
	if k := strings.Index(query[j+1:], tag); k >= 0 {
		return j + 1 + k + len(tag)
	}
	return len(query)
}

// CopyFrom loads rows into table's columns in bulk: COPY on PostgreSQL;
// on SQLite, multi-row INSERTs in one transaction. It is for large loads
// (imports, benchmarks), not the request path. It returns the number of
// rows loaded.
func CopyFrom(ctx context.Context, db *sql.DB, table string, columns []string, rows iter.Seq[[]any]) (int64, error) {
	if DialectOf(db) == Postgres {
		conn, err := db.Conn(ctx)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		var n int64
		err = conn.Raw(func(dc any) error {
			next, stop := iter.Pull(rows)
			defer stop()
			n, err = dc.(*pgConn).Conn.Conn().CopyFrom(ctx, pgx.Identifier{table}, columns, &pullSource{next: next})
			return err
		})
		return n, err
	}
	return sqliteCopy(ctx, db, table, columns, rows)
}

// pullSource is pgx's CopyFromSource over a pulled iterator.
type pullSource struct {
	next func() ([]any, bool)
	row  []any
}

func (s *pullSource) Next() bool {
	var ok bool
	s.row, ok = s.next()
	return ok
}

func (s *pullSource) Values() ([]any, error) { return s.row, nil }

func (s *pullSource) Err() error { return nil }

// sqliteCopy inserts rows many to a statement: SQLite parses and plans
// each statement once, then binds far fewer times than rows.
func sqliteCopy(ctx context.Context, db *sql.DB, table string, columns []string, rows iter.Seq[[]any]) (int64, error) {
	perStmt := max(1, 960/len(columns)) // well under SQLite's bound on variables
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", len(columns)), ",") + ")"
	head := "INSERT INTO " + table + "(" + strings.Join(columns, ", ") + ") VALUES "
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	many, err := tx.PrepareContext(ctx, head+strings.TrimSuffix(strings.Repeat(tuple+",", perStmt), ","))
	if err != nil {
		return 0, err
	}
	defer many.Close()
	one, err := tx.PrepareContext(ctx, head+tuple)
	if err != nil {
		return 0, err
	}
	defer one.Close()
	var n int64
	args := make([]any, 0, perStmt*len(columns))
	for row := range rows {
		if len(row) != len(columns) {
			return n, fmt.Errorf("copy into %s: a row has %d values for %d columns", table, len(row), len(columns))
		}
		args = append(args, row...)
		if len(args) == cap(args) {
			if _, err := many.ExecContext(ctx, args...); err != nil {
				return n, err
			}
			n += int64(perStmt)
			args = args[:0]
		}
	}
	for i := 0; i < len(args); i += len(columns) {
		if _, err := one.ExecContext(ctx, args[i:i+len(columns)]...); err != nil {
			return n, err
		}
		n++
	}
	return n, tx.Commit()
}
