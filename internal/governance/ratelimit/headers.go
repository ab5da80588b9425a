package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// SetHeaders writes d on h as OpenAI writes its rate-limit headers:
// x-ratelimit-limit-requests, x-ratelimit-remaining-requests and
// x-ratelimit-reset-requests, the same three for tokens, each trio only when
// a limit of that dimension applied. Resets use OpenAI's duration format
// ("1s", "6m0s", "20ms"), rounded up to the millisecond. On a refusal that
// waiting can cure it adds Retry-After in whole seconds (rounded up, at least
// 1) and retry-after-ms, which OpenAI's SDKs prefer when present.
func (d Decision) SetHeaders(h http.Header) {
	// The names are written in their canonical form straight into the map
	// (what h.Set would store after canonicalising each one), and the
	// values share one backing array: this runs on every governed request.
	var vals [8]string
	n := 0
	set := func(name, v string) {
		vals[n] = v
		h[name] = vals[n : n+1 : n+1]
		n++
	}
	if q := d.Requests; q.Limit > 0 {
		set("X-Ratelimit-Limit-Requests", strconv.FormatInt(q.Limit, 10))
		set("X-Ratelimit-Remaining-Requests", strconv.FormatInt(q.Remaining, 10))
		set("X-Ratelimit-Reset-Requests", resetString(q.Reset))
	}
	if q := d.Tokens; q.Limit > 0 {
		set("X-Ratelimit-Limit-Tokens", strconv.FormatInt(q.Limit, 10))
		set("X-Ratelimit-Remaining-Tokens", strconv.FormatInt(q.Remaining, 10))
		set("X-Ratelimit-Reset-Tokens", resetString(q.Reset))
	}
	if !d.Allowed && !d.TooLarge {
		secs := max(int64((d.RetryAfter+time.Second-1)/time.Second), 1)
		ms := max(int64((d.RetryAfter+time.Millisecond-1)/time.Millisecond), 1)
		set("Retry-After", strconv.FormatInt(secs, 10))
		set("Retry-After-Ms", strconv.FormatInt(ms, 10))
	}
}

// resetString formats d as Go durations print, which is the format OpenAI's
// reset headers use, after rounding up to whole milliseconds.
func resetString(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return ((d + time.Millisecond - 1) / time.Millisecond * time.Millisecond).String()
}
