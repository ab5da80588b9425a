package openai

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"
)

// DefaultRetention is how long a stored response is kept when the
// configuration says nothing: OpenAI keeps stored responses 30 days.
const DefaultRetention = 30 * 24 * time.Hour

// ResponseStore keeps stored Responses API responses in the database, per
// API key: a key reads, chains from and deletes only its own. Each row
// holds the response, the request's input items and the conversation
// before them, so previous_response_id costs one read however long the
// chain. Rows older than Retention are not served and are pruned.
type ResponseStore struct {
	DB *sql.DB
	// Retention is how long a response is kept; zero means
	// DefaultRetention.
	Retention time.Duration

	lastPrune atomic.Int64
}

// stored is one stored response.
type stored struct {
	Response json.RawMessage
	// Input is the request's own input items; Context the items of the
	// responses it continued (their inputs and outputs), oldest first.
	Input, Context []item
}

func (s *ResponseStore) retention() time.Duration {
	if s.Retention <= 0 {
		return DefaultRetention
	}
	return s.Retention
}

// put stores a response for keyID.
func (s *ResponseStore) put(ctx context.Context, keyID, id string, now time.Time, resp []byte, input, context []item) error {
	in, _ := json.Marshal(input)
	cx, _ := json.Marshal(context)
	_, err := s.DB.ExecContext(ctx, `INSERT INTO responses(id, key_id, created_at, expires_at, response, input, context) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		id, keyID, now.UnixMilli(), now.Add(s.retention()).UnixMilli(), string(resp), string(in), string(cx))
	if err == nil {
		s.prune(ctx, now)
	}
	return err
}

// prune deletes expired responses, at most once a minute.
func (s *ResponseStore) prune(ctx context.Context, now time.Time) {
	last := s.lastPrune.Load()
	if now.UnixMilli()-last < time.Minute.Milliseconds() || !s.lastPrune.CompareAndSwap(last, now.UnixMilli()) {
		return
	}
	s.DB.ExecContext(ctx, `DELETE FROM responses WHERE expires_at <= ?`, now.UnixMilli())
}

// get returns keyID's response id, or nil when there is none (never
// stored, another key's, deleted or expired).
func (s *ResponseStore) get(ctx context.Context, keyID, id string) (*stored, error) {
	var resp, in, cx string
	err := s.DB.QueryRowContext(ctx, `SELECT response, input, context FROM responses WHERE id = ? AND key_id = ? AND expires_at > ?`,
		id, keyID, time.Now().UnixMilli()).Scan(&resp, &in, &cx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := &stored{Response: json.RawMessage(resp)}
	if err := json.Unmarshal([]byte(in), &st.Input); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(cx), &st.Context); err != nil {
		return nil, err
	}
	return st, nil
}

// delete removes keyID's response id and reports whether there was one.
func (s *ResponseStore) delete(ctx context.Context, keyID, id string) (bool, error) {
	res, err := s.DB.ExecContext(ctx, `DELETE FROM responses WHERE id = ? AND key_id = ? AND expires_at > ?`, id, keyID, time.Now().UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// conversation is what a response continuing this one sees before its own
// input: the context, the input, then the output.
func (st *stored) conversation() ([]item, error) {
	var resp struct {
		Output []item `json:"output"`
	}
	if err := json.Unmarshal(st.Response, &resp); err != nil {
		return nil, err
	}
	out := make([]item, 0, len(st.Context)+len(st.Input)+len(resp.Output))
	out = append(out, st.Context...)
	out = append(out, st.Input...)
	return append(out, resp.Output...), nil
}
