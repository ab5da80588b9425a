package logline

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestMatchesSlogJSONHandler writes the same records through Handler and
// slog.JSONHandler and wants the same bytes, and wants the fast path to
// have written the flat ones itself (else the comparison would hold
// trivially).
func TestMatchesSlogJSONHandler(t *testing.T) {
	at := time.Date(2026, 12, 8, 0, 35, 33, 123456700, time.UTC)
	zoned := time.Date(2026, 12, 8, 1, 2, 3, 0, time.FixedZone("CET", 3600))
	cases := []struct {
		name  string
		time  time.Time
		level slog.Level
		msg   string
		attrs []slog.Attr
		fast  bool
	}{
		{"access line", at, slog.LevelInfo, "request", []slog.Attr{slog.String("request_id", "r-1a2b3c"), slog.String("method", "POST"),
			slog.String("path", "/v1/chat/completions"), slog.Int("status", 200), slog.Float64("duration_ms", 0.412),
			slog.String("key", "bench-key")}, true},
		{"no time", time.Time{}, slog.LevelWarn, "w", []slog.Attr{slog.Bool("ok", false), slog.Uint64("n", math.MaxUint64)}, true},
		{"zone and whole seconds", zoned, slog.LevelError, "e", []slog.Attr{slog.Int64("neg", -42), slog.Float64("zero", 0)}, true},
		{"custom level", at, slog.LevelInfo + 2, "x", nil, true},
		{"floats json writes plainly", at, slog.LevelInfo, "f", []slog.Attr{slog.Float64("a", 1e-6), slog.Float64("b", 123456789.125),
			slog.Float64("c", -0.5), slog.Float64("d", 1e20)}, true},
		{"a float in exponent form", at, slog.LevelInfo, "f", []slog.Attr{slog.Float64("tiny", 1e-7)}, false},
		{"a huge float", at, slog.LevelInfo, "f", []slog.Attr{slog.Float64("huge", 1e21)}, false},
		{"NaN", at, slog.LevelInfo, "f", []slog.Attr{slog.Float64("nan", math.NaN())}, false},
		{"a quote", at, slog.LevelInfo, "q", []slog.Attr{slog.String("path", `/a"b`)}, false},
		{"HTML characters", at, slog.LevelInfo, "h", []slog.Attr{slog.String("path", "/a?b=<c>&d")}, true},
		{"unicode", at, slog.LevelInfo, "u", []slog.Attr{slog.String("key", "clé\u2028")}, false},
		{"a control character", at, slog.LevelInfo, "c\n", nil, false},
		{"a group", at, slog.LevelInfo, "g", []slog.Attr{slog.Group("g", slog.Int("a", 1))}, false},
		{"a duration", at, slog.LevelInfo, "d", []slog.Attr{slog.Duration("d", time.Second)}, false},
		{"an error", at, slog.LevelInfo, "e", []slog.Attr{slog.Any("err", context.Canceled)}, false},
		{"an empty key", at, slog.LevelInfo, "k", []slog.Attr{slog.Int("", 1)}, false},
		{"a year past 9999", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "y", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := slog.NewRecord(c.time, c.level, c.msg, 0)
			r.AddAttrs(c.attrs...)
			var got, want bytes.Buffer
			opts := &slog.HandlerOptions{Level: slog.LevelDebug}
			if err := NewJSONHandler(&got, opts).Handle(context.Background(), r.Clone()); err != nil {
				t.Fatal(err)
			}
			if err := slog.NewJSONHandler(&want, opts).Handle(context.Background(), r.Clone()); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("got  %s\nwant %s", got.String(), want.String())
			}
			if _, fast := appendRecord(nil, &r); fast != c.fast {
				t.Errorf("fast path taken: %v, want %v", fast, c.fast)
			}
		})
	}
}

// TestFloatsMatchSlog compares many floats of the range the fast path
// takes.
func TestFloatsMatchSlog(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		f := math.Pow(10, rng.Float64()*26-7) * (rng.Float64() - 0.3)
		if i%3 == 0 {
			f = float64(rng.IntN(10_000_000)) / 1000 // a duration in ms
		}
		r := slog.NewRecord(time.Time{}, slog.LevelInfo, "m", 0)
		r.AddAttrs(slog.Float64("v", f))
		var got, want bytes.Buffer
		NewJSONHandler(&got, nil).Handle(context.Background(), r)
		slog.NewJSONHandler(&want, nil).Handle(context.Background(), r)
		if got.String() != want.String() {
			t.Fatalf("%v: got %s want %s", f, got.String(), want.String())
		}
	}
}

// TestLevelsAndDerivedHandlers: records below the level are not enabled,
// and WithAttrs and WithGroup give slog's own handlers, writing to the
// same writer.
func TestLevelsAndDerivedHandlers(t *testing.T) {
	var buf bytes.Buffer
	h := NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Fatal("Enabled does not follow the level")
	}
	slog.New(h).With("component", "x").Warn("hello", "n", 1)
	if got := buf.String(); !bytes.Contains([]byte(got), []byte(`"msg":"hello","component":"x","n":1`)) {
		t.Fatalf("derived handler wrote %s", got)
	}
}

func BenchmarkAccessLine(b *testing.B) {
	attrs := []slog.Attr{slog.String("request_id", "r-1a2b3c"), slog.String("method", "POST"),
		slog.String("path", "/v1/chat/completions"), slog.Int("status", 200), slog.Float64("duration_ms", 0.412),
		slog.String("key", "bench-key")}
	for _, hc := range []struct {
		name string
		h    slog.Handler
	}{{"logline", NewJSONHandler(discard{}, nil)}, {"slog", slog.NewJSONHandler(discard{}, nil)}} {
		b.Run(hc.name, func(b *testing.B) {
			l := slog.New(hc.h)
			b.ReportAllocs()
			for b.Loop() {
				l.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
