package budget

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Event is the JSON body Notifier posts when a budget reaches its limit.
// Amounts are given twice: as exact decimal strings of dollars and as
// integer nano-dollars.
type Event struct {
	// ID is the same for every delivery of one crossing (budget and period),
	// so a receiver can drop the duplicates that retries may cause.
	ID string `json:"id"`
	// Type is always "budget.crossed".
	Type string `json:"type"`
	// Scope is the budget's scope.
	Scope string `json:"scope"`
	// Period is "daily" or "monthly".
	Period string `json:"period"`
	// Kind is "soft" or "hard".
	Kind string `json:"kind"`
	// LimitUSD is the budget's limit in dollars, as an exact decimal.
	LimitUSD string `json:"limit_usd"`
	// SpentUSD is what the period has spent, as an exact decimal.
	SpentUSD string `json:"spent_usd"`
	// LimitNanos is the limit in nano-dollars.
	LimitNanos int64 `json:"limit_nanos"`
	// SpentNanos is the spend in nano-dollars.
	SpentNanos int64 `json:"spent_nanos"`
	// PeriodStart is when the period began (UTC).
	PeriodStart time.Time `json:"period_start"`
	// ResetsAt is when the period ends and the budget starts over (UTC).
	ResetsAt time.Time `json:"resets_at"`
}

// NewEvent describes the crossing s, as Settle reported it.
func NewEvent(s Status) Event {
	b := s.Budget
	return Event{
		ID:          fmt.Sprintf("%s|%s|%s|%s|%d", b.Scope, b.Period, s.PeriodStart.Format("2006-01-02"), b.Kind(), b.Limit),
		Type:        "budget.crossed",
		Scope:       b.Scope,
		Period:      b.Period.String(),
		Kind:        b.Kind(),
		LimitUSD:    b.Limit.Decimal(),
		SpentUSD:    s.Spent.Decimal(),
		LimitNanos:  int64(b.Limit),
		SpentNanos:  int64(s.Spent),
		PeriodStart: s.PeriodStart,
		ResetsAt:    s.ResetsAt,
	}
}

// Notifier posts budget crossings to a webhook as JSON (Event), retrying
// with exponential backoff on network errors, 408, 429 and 5xx answers. The
// zero value is not usable: URL is required.
type Notifier struct {
	// URL receives the POSTs.
	URL string
	// Client sends them; nil means a client with a 10-second timeout.
	Client *http.Client
	// Header is added to every request (an Authorization header, say).
	Header http.Header
	// Attempts is how many times to try in all; 0 means 4.
	Attempts int
	// Backoff is the wait before the first retry, doubled before each next
	// one; 0 means 500ms.
	Backoff time.Duration
}

var defaultNotifyClient = &http.Client{Timeout: 10 * time.Second}

// Notify posts the crossing s and returns once the webhook accepted it (any
// 2xx), gave a permanent refusal, ran out of attempts or ctx ended. It
// blocks through the retries; run it on a goroutine the caller owns.
func (n *Notifier) Notify(ctx context.Context, s Status) error {
	body, err := json.Marshal(NewEvent(s))
	if err != nil {
		return err
	}
	client := n.Client
	if client == nil {
		client = defaultNotifyClient
	}
	attempts := n.Attempts
	if attempts <= 0 {
		attempts = 4
	}
	wait := n.Backoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	var last error
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("budget: webhook: %w (last error: %v)", ctx.Err(), last)
			case <-t.C:
			}
			wait *= 2
		}
		var retry bool
		retry, last = n.post(ctx, client, body)
		if last == nil || !retry {
			return last
		}
	}
	return fmt.Errorf("budget: webhook: gave up after %d attempts: %w", attempts, last)
}

// post makes one attempt; retry reports whether another could succeed.
func (n *Notifier) post(ctx context.Context, client *http.Client, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("budget: webhook: %w", err)
	}
	for k, vs := range n.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		// A *url.Error repeats the URL, which may hold a token: keep it out
		// of errors that end up in logs.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return ctx.Err() == nil, fmt.Errorf("budget: webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("budget: webhook answered %d", c)
	default:
		return false, fmt.Errorf("budget: webhook answered %d", c)
	}
}
