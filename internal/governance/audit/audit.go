// Package audit records every change made through the admin API: who (the
// admin key), what (method, path, resource, the request body and, where
// there is one, the resource as it was before and after), when, and how it
// ended. A middleware around the admin routes does the recording, so no
// handler can forget it; handlers that know the "before" state cheaply
// hand it over with SetBefore.
//
// Secrets never reach the log: JSON members whose names say secret
// (key, token, password, secret, credential, authorization, webhook, ...)
// are replaced by "[redacted]" at any depth, secrets recognised by their
// value (URL passwords, bearer tokens, sk-/sk-ant-/jk-/AKIA… keys, the
// value after "--api-key") are redacted inside any string, and bodies
// that are not JSON are not recorded at all. Reads (GET, HEAD) are not recorded.
package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/api"
)

// MaxBody is the most of a request or response body recorded; larger
// bodies are noted, not kept.
const MaxBody = 64 << 10

// Entry is one recorded admin action.
type Entry struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	// KeyID and KeyName are the admin key that acted.
	KeyID   string `json:"key_id"`
	KeyName string `json:"key_name"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	// Resource is the path below /api/v1/ ("keys/key_1a2b").
	Resource string `json:"resource"`
	// Status is the HTTP status the action ended with.
	Status int `json:"status"`
	// Request is the request body, redacted.
	Request json.RawMessage `json:"request,omitempty"`
	// Before is the resource before the action, where the handler had it.
	Before json.RawMessage `json:"before,omitempty"`
	// After is the successful response's body (the resource after the
	// action), redacted.
	After json.RawMessage `json:"after,omitempty"`
}

// Log writes and reads the audit log.
type Log struct {
	DB *sql.DB
	// Logger receives the failures to record; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

type recordKey struct{}

// record is what a handler adds to its request's entry.
type record struct{ before json.RawMessage }

// SetBefore records v (marshalled to JSON and redacted) as the state of
// the resource before the request changed it. It does nothing outside
// Wrap.
func SetBefore(r *http.Request, v any) {
	rec, ok := r.Context().Value(recordKey{}).(*record)
	if !ok || v == nil {
		return
	}
	if b, err := json.Marshal(v); err == nil {
		rec.before = Redact(b)
	}
}

// Wrap records every request to next that may change something (any
// method but GET, HEAD and OPTIONS), after next has answered it. It goes
// inside authentication, which names the key.
func (l *Log) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		start := l.now()
		body, whole := readPrefix(r)
		rec := &record{}
		cw := &captureWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r.WithContext(context.WithValue(r.Context(), recordKey{}, rec)))
		info := api.InfoFrom(r.Context())
		e := Entry{Time: start, RequestID: info.RequestID, Method: r.Method, Path: r.URL.Path,
			Resource: strings.TrimPrefix(r.URL.Path, "/api/v1/"), Status: cw.status, Before: rec.before}
		if e.Status == 0 {
			e.Status = http.StatusOK
		}
		if k := info.Key; k != nil {
			e.KeyID, e.KeyName = k.ID, k.Name
		}
		e.Request = describeBody(body, whole)
		if e.Status < 300 && cw.body.Len() > 0 {
			e.After = describeBody(cw.body.Bytes(), !cw.overflow)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		if err := l.insert(ctx, e); err != nil {
			l.logger().Error("audit: could not record an admin action", "method", e.Method, "path", e.Path,
				"key", e.KeyName, "request_id", e.RequestID, "err", err)
		}
	})
}

func (l *Log) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Log) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

// readPrefix reads up to MaxBody bytes of r's body for the log and puts
// them back in front of the rest, so the handler reads the body whole.
// whole reports whether that was all of it.
func readPrefix(r *http.Request) (prefix []byte, whole bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	prefix, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, false
	}
	if len(prefix) <= MaxBody {
		r.Body = struct {
			io.Reader
			io.Closer
		}{bytes.NewReader(prefix), r.Body}
		return prefix, true
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(prefix), r.Body), r.Body}
	return nil, false
}

// describeBody returns what the log keeps of a body: the redacted JSON,
// or a note saying what was left out.
func describeBody(b []byte, whole bool) json.RawMessage {
	switch {
	case !whole:
		return note("body of more than " + strconv.Itoa(MaxBody) + " bytes, not recorded")
	case len(bytes.TrimSpace(b)) == 0:
		return nil
	case !json.Valid(b):
		return note("non-JSON body of " + strconv.Itoa(len(b)) + " bytes, not recorded")
	}
	return Redact(b)
}

func note(s string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"_note": s})
	return b
}

// captureWriter keeps the first MaxBody bytes of a response and its
// status, passing everything through.
type captureWriter struct {
	http.ResponseWriter
	status   int
	body     bytes.Buffer
	overflow bool
}

func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if room := MaxBody - w.body.Len(); room > 0 {
		w.body.Write(b[:min(len(b), room)])
	}
	if w.body.Len()+len(b) > MaxBody {
		w.overflow = true
	}
	return w.ResponseWriter.Write(b)
}

func (w *captureWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *captureWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (l *Log) insert(ctx context.Context, e Entry) error {
	_, err := l.DB.ExecContext(ctx, `INSERT INTO audit_log(ts, request_id, key_id, key_name, method, path, resource, status, request_json, before_json, after_json)
		VALUES (?,?,?,?,?,?,?,?,?,?,?)`, e.Time.UnixMilli(), e.RequestID, e.KeyID, e.KeyName, e.Method, e.Path, e.Resource, e.Status,
		nullJSON(e.Request), nullJSON(e.Before), nullJSON(e.After))
	return err
}

func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// List returns the entries recorded at or after since, newest first, at
// most limit of them.
func (l *Log) List(ctx context.Context, since time.Time, limit int) ([]Entry, error) {
	rows, err := l.DB.QueryContext(ctx, `SELECT id, ts, request_id, key_id, key_name, method, path, resource, status, request_json, before_json, after_json
		FROM audit_log WHERE ts >= ? ORDER BY ts DESC, id DESC LIMIT ?`, since.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var ts int64
		var req, before, after sql.NullString
		if err := rows.Scan(&e.ID, &ts, &e.RequestID, &e.KeyID, &e.KeyName, &e.Method, &e.Path, &e.Resource, &e.Status,
			&req, &before, &after); err != nil {
			return nil, err
		}
		e.Time = time.UnixMilli(ts).UTC()
		for _, f := range []struct {
			src sql.NullString
			dst *json.RawMessage
		}{{req, &e.Request}, {before, &e.Before}, {after, &e.After}} {
			if f.src.Valid {
				*f.dst = json.RawMessage(f.src.String)
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
