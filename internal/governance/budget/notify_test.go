package budget

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var crossing = Status{
	Budget:      Budget{Scope: "team:ml", Period: Monthly, Limit: 100 * Dollar, Soft: true},
	Spent:       USD(100.25),
	PeriodStart: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
	ResetsAt:    time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
}

// webhook answers the given statuses in turn (200 once they run out) and
// records what it received.
type webhook struct {
	statuses []int
	calls    atomic.Int32
	bodies   chan []byte
	headers  chan http.Header
}

func newWebhook(t *testing.T, statuses ...int) (*webhook, *httptest.Server) {
	w := &webhook{statuses: statuses, bodies: make(chan []byte, 16), headers: make(chan http.Header, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n := int(w.calls.Add(1)) - 1
		body, _ := io.ReadAll(r.Body)
		w.bodies <- body
		w.headers <- r.Header.Clone()
		if n < len(w.statuses) {
			rw.WriteHeader(w.statuses[n])
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return w, srv
}

func TestNotifierRetriesThenDelivers(t *testing.T) {
	w, srv := newWebhook(t, http.StatusServiceUnavailable, http.StatusTooManyRequests)
	n := &Notifier{URL: srv.URL, Backoff: time.Millisecond, Header: http.Header{"Authorization": {"Bearer s3cret"}}}
	if err := n.Notify(context.Background(), crossing); err != nil {
		t.Fatal(err)
	}
	if got := w.calls.Load(); got != 3 {
		t.Fatalf("%d attempts, want 3", got)
	}
	var first []byte
	for i := range 3 {
		body := <-w.bodies
		h := <-w.headers
		if i == 0 {
			first = body
		} else if string(body) != string(first) {
			t.Errorf("retry %d sent a different body", i)
		}
		if h.Get("Content-Type") != "application/json" || h.Get("Authorization") != "Bearer s3cret" {
			t.Errorf("headers %v", h)
		}
	}
	var got map[string]any
	if err := json.Unmarshal(first, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id":           "team:ml|monthly|2026-05-01|soft|100000000000",
		"type":         "budget.crossed",
		"scope":        "team:ml",
		"period":       "monthly",
		"kind":         "soft",
		"limit_usd":    "100.00",
		"spent_usd":    "100.25",
		"limit_nanos":  1e11,
		"spent_nanos":  1.0025e11,
		"period_start": "2026-05-01T00:00:00Z",
		"resets_at":    "2026-06-01T00:00:00Z",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("body has %d fields, want %d: %s", len(got), len(want), first)
	}
}

func TestNotifierPermanentRefusal(t *testing.T) {
	w, srv := newWebhook(t, http.StatusBadRequest)
	n := &Notifier{URL: srv.URL, Backoff: time.Millisecond}
	err := n.Notify(context.Background(), crossing)
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("error %v, want one naming the 400", err)
	}
	if got := w.calls.Load(); got != 1 {
		t.Errorf("%d attempts on a 400, want 1", got)
	}
}

func TestNotifierGivesUp(t *testing.T) {
	w, srv := newWebhook(t, 500, 500, 500, 500, 500)
	n := &Notifier{URL: srv.URL + "/hook?token=s3cret", Attempts: 3, Backoff: time.Millisecond}
	err := n.Notify(context.Background(), crossing)
	if err == nil || !strings.Contains(err.Error(), "3 attempts") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v", err)
	}
	if got := w.calls.Load(); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}
	// A network error must not leak the URL's token either.
	srv.Close()
	err = n.Notify(context.Background(), crossing)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("network error %v", err)
	}
}

func TestNotifierStopsWithContext(t *testing.T) {
	w, srv := newWebhook(t, 503, 503, 503)
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{URL: srv.URL, Backoff: time.Hour}
	done := make(chan error, 1)
	go func() { done <- n.Notify(ctx, crossing) }()
	<-w.bodies // the first attempt happened; now it waits an hour
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Notify ignored the cancelled context")
	}
}
