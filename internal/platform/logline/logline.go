// Package logline is slog's JSON handler with a fast path for the lines a
// server writes on every request: a record whose message and attributes
// are flat (strings, integers, booleans, ordinary floats) and plainly
// printable is encoded here, byte for byte as slog.JSONHandler would,
// without its general machinery (and without json.Marshal, which slog
// calls for every float). Any other record goes to slog.JSONHandler.
package logline

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
)

// Handler is a slog.Handler that writes JSON lines. It is safe for
// concurrent use.
type Handler struct {
	slow  slog.Handler
	w     io.Writer
	mu    *sync.Mutex
	level slog.Leveler
	fast  bool
}

// NewJSONHandler returns a handler that writes what
// slog.NewJSONHandler(w, opts) writes. Options that rewrite records
// (ReplaceAttr, AddSource) turn the fast path off.
func NewJSONHandler(w io.Writer, opts *slog.HandlerOptions) *Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{slow: slog.NewJSONHandler(w, opts), w: w, mu: new(sync.Mutex), level: level,
		fast: opts.ReplaceAttr == nil && !opts.AddSource}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return l >= h.level.Level() }

// WithAttrs implements slog.Handler: the derived handler is slog's own.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler { return h.slow.WithAttrs(as) }

// WithGroup implements slog.Handler: the derived handler is slog's own.
func (h *Handler) WithGroup(name string) slog.Handler { return h.slow.WithGroup(name) }

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.fast {
		return h.slow.Handle(ctx, r)
	}
	bp := bufs.Get().(*[]byte)
	b, ok := appendRecord((*bp)[:0], &r)
	if !ok {
		bufs.Put(bp)
		return h.slow.Handle(ctx, r)
	}
	h.mu.Lock()
	_, err := h.w.Write(b)
	h.mu.Unlock()
	if cap(b) <= 16<<10 {
		*bp = b
		bufs.Put(bp)
	}
	return err
}

// appendRecord appends r as one JSON line, or reports false when r has
// anything the fast path does not write as slog does.
func appendRecord(b []byte, r *slog.Record) ([]byte, bool) {
	b = append(b, '{')
	if !r.Time.IsZero() {
		t := r.Time
		if y := t.Year(); y < 0 || y >= 10000 {
			return b, false
		}
		b = append(b, `"time":"`...)
		b = t.Round(0).AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	var ok bool
	if b, ok = appendPlain(b, r.Level.String()); !ok {
		return b, false
	}
	b = append(b, `,"msg":`...)
	if b, ok = appendPlain(b, r.Message); !ok {
		return b, false
	}
	r.Attrs(func(a slog.Attr) bool {
		b = append(b, ',')
		if b, ok = appendPlain(b, a.Key); !ok || a.Key == "" {
			ok = false
			return false
		}
		b = append(b, ':')
		b, ok = appendValue(b, a.Value)
		return ok
	})
	if !ok {
		return b, false
	}
	return append(b, "}\n"...), true
}

// appendValue appends v as slog's JSON handler does, for the kinds the
// fast path takes.
func appendValue(b []byte, v slog.Value) ([]byte, bool) {
	switch v.Kind() {
	case slog.KindString:
		return appendPlain(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindFloat64:
		// encoding/json writes a float in 'f' format, shortest, while
		// its magnitude is 0 or within [1e-6, 1e21); other floats, NaN
		// and the infinities are left to slog.
		f := v.Float64()
		if a := math.Abs(f); f != 0 && (a < 1e-6 || a >= 1e21 || math.IsNaN(f)) {
			return b, false
		}
		return strconv.AppendFloat(b, f, 'f', -1, 64), true
	}
	return b, false
}

// appendPlain appends s quoted when every byte of it is printable ASCII
// that JSON writes as itself (not '"' or '\\'), and reports false
// otherwise.
func appendPlain(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}
