package store

import (
	"database/sql"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is the SQL flavour of a database Open returned. Most of
// Junction's SQL is written once, in the subset both dialects share; a
// query that cannot be asks its database's Dialect for the part that
// differs.
type Dialect int

const (
	// SQLite is the embedded default: one file in the data directory.
	SQLite Dialect = iota
	// Postgres is PostgreSQL through pgx, shared by several replicas.
	Postgres
)

// String returns "sqlite" or "postgres".
func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DialectOf returns the dialect of a database opened by Open.
func DialectOf(db *sql.DB) Dialect {
	if _, ok := db.Driver().(*pgDriver); ok {
		return Postgres
	}
	return SQLite
}

// JSONText returns an SQL expression for the string value of the field
// name of the JSON object held in the text column col, with the one
// argument that expression takes. The value is NULL when the field is
// missing. Tags are stored this way.
func (d Dialect) JSONText(col, name string) (expr string, arg any) {
	if d == Postgres {
		return "(" + col + "::jsonb ->> CAST(? AS TEXT))", name
	}
	return "json_extract(" + col + ", ?)", `$."` + strings.ReplaceAll(name, `"`, `\"`) + `"`
}

// IsUniqueViolation reports whether err is a database's refusal of a row
// that would duplicate a primary key or a unique index, from either
// driver.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
		return false
	}
	return false
}
