package ratelimit

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestSetHeaders(t *testing.T) {
	for _, c := range []struct {
		name string
		d    Decision
		want http.Header
	}{
		{
			name: "allowed, both dimensions",
			d: Decision{
				Allowed:  true,
				Requests: Quota{Limit: 60, Remaining: 59, Reset: time.Second},
				Tokens:   Quota{Limit: 150000, Remaining: 149984, Reset: 6 * time.Minute},
			},
			want: http.Header{
				"X-Ratelimit-Limit-Requests":     {"60"},
				"X-Ratelimit-Remaining-Requests": {"59"},
				"X-Ratelimit-Reset-Requests":     {"1s"},
				"X-Ratelimit-Limit-Tokens":       {"150000"},
				"X-Ratelimit-Remaining-Tokens":   {"149984"},
				"X-Ratelimit-Reset-Tokens":       {"6m0s"},
			},
		},
		{
			name: "allowed, requests only; reset rounded up to the millisecond",
			d:    Decision{Allowed: true, Requests: Quota{Limit: 5, Remaining: 0, Reset: 19_200_001 * time.Nanosecond}},
			want: http.Header{
				"X-Ratelimit-Limit-Requests":     {"5"},
				"X-Ratelimit-Remaining-Requests": {"0"},
				"X-Ratelimit-Reset-Requests":     {"20ms"},
			},
		},
		{
			name: "refused: Retry-After rounds up to whole seconds",
			d: Decision{
				Limit:      Limit{Scope: "key:a", TPM: 1000},
				RetryAfter: 1500 * time.Millisecond,
				Tokens:     Quota{Limit: 1000, Remaining: 12, Reset: 1500 * time.Millisecond},
			},
			want: http.Header{
				"X-Ratelimit-Limit-Tokens":     {"1000"},
				"X-Ratelimit-Remaining-Tokens": {"12"},
				"X-Ratelimit-Reset-Tokens":     {"1.5s"},
				"Retry-After":                  {"2"},
				"Retry-After-Ms":               {"1500"},
			},
		},
		{
			name: "refused with a tiny wait still says 1 second",
			d:    Decision{RetryAfter: 3 * time.Microsecond},
			want: http.Header{"Retry-After": {"1"}, "Retry-After-Ms": {"1"}},
		},
		{
			name: "too large: no Retry-After, waiting does not help",
			d:    Decision{TooLarge: true, Tokens: Quota{Limit: 100, Remaining: 100}},
			want: http.Header{
				"X-Ratelimit-Limit-Tokens":     {"100"},
				"X-Ratelimit-Remaining-Tokens": {"100"},
				"X-Ratelimit-Reset-Tokens":     {"0s"},
			},
		},
		{name: "no limits", d: Decision{Allowed: true}, want: http.Header{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			c.d.SetHeaders(h)
			if !reflect.DeepEqual(h, c.want) {
				t.Errorf("got  %v\nwant %v", h, c.want)
			}
		})
	}
}

func BenchmarkSetHeaders(b *testing.B) {
	d := Decision{Allowed: true,
		Requests: Quota{Limit: 60, Remaining: 59, Reset: time.Second},
		Tokens:   Quota{Limit: 150000, Remaining: 149984, Reset: 6 * time.Minute}}
	b.ReportAllocs()
	for b.Loop() {
		d.SetHeaders(make(http.Header, 8))
	}
}
