package autoscale

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// Activity is one change of a variant's desired instance count, in the
// shape of Application Auto Scaling's DescribeScalingActivities: asked
// for by a policy (or seen made by another writer: the REST API, the CLI,
// a cold start), InProgress until the variant runs that many ready
// instances, then Successful; Overridden when the count was changed again
// first; Failed when it could not be asked for.
type Activity struct {
	ID       string `json:"activity_id"`
	Endpoint string `json:"endpoint"`
	Variant  string `json:"variant"`
	// ResourceID and ScalableDimension name the variant as AWS does.
	ResourceID        string `json:"resource_id"`
	ScalableDimension string `json:"scalable_dimension"`
	// Description says what was asked; Cause, why (the metric values, the
	// target or alarm, the policy).
	Description string     `json:"description"`
	Cause       string     `json:"cause"`
	From        int        `json:"from_instance_count"`
	To          int        `json:"to_instance_count"`
	StartTime   time.Time  `json:"start_time"`
	EndTime     *time.Time `json:"end_time,omitempty"`
	// StatusCode is InProgress, Successful, Overridden or Failed.
	StatusCode    string `json:"status_code"`
	StatusMessage string `json:"status_message,omitempty"`
}

// Activity status codes.
const (
	InProgress = "InProgress"
	Successful = "Successful"
	Overridden = "Overridden"
	Failed     = "Failed"
)

// activityRetention is how long activities are kept: six weeks, as AWS
// keeps them.
const activityRetention = 42 * 24 * time.Hour

// newActivity fills in an activity's derived fields.
func newActivity(endpoint, variant string, from, to int, cause string, at time.Time) *Activity {
	// The id starts with the time it was made, so activities of one
	// evaluation (a change seen and the answer to it) list in the order
	// they happened.
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return &Activity{ID: fmt.Sprintf("%016x%s", time.Now().UnixNano(), hex.EncodeToString(b)), Endpoint: endpoint, Variant: variant,
		ResourceID: "endpoint/" + endpoint + "/variant/" + variant, ScalableDimension: "sagemaker:variant:DesiredInstanceCount",
		Description: fmt.Sprintf("Setting desired instance count to %d.", to), Cause: cause, From: from, To: to,
		StartTime: at.UTC().Truncate(time.Millisecond), StatusCode: InProgress}
}

// AddActivity records an activity, and forgets those past retention.
func (s *Store) AddActivity(ctx context.Context, a *Activity) error {
	var ended int64
	if a.EndTime != nil {
		ended = a.EndTime.UnixMilli()
	}
	_, err := s.DB.ExecContext(ctx, `INSERT INTO scaling_activities(id, endpoint, variant, started_at, ended_at, status, from_count, to_count, cause, status_message)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.Endpoint, a.Variant, a.StartTime.UnixMilli(), ended, a.StatusCode, a.From, a.To, a.Cause, a.StatusMessage)
	if err != nil {
		return err
	}
	_, err = s.DB.ExecContext(ctx, `DELETE FROM scaling_activities WHERE started_at < ?`, a.StartTime.Add(-activityRetention).UnixMilli())
	return err
}

// EndActivity gives an InProgress activity its outcome.
func (s *Store) EndActivity(ctx context.Context, id, status, message string, at time.Time) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE scaling_activities SET status = ?, status_message = ?, ended_at = ? WHERE id = ? AND status = ?`,
		status, message, at.UnixMilli(), id, InProgress)
	return err
}

// Activities returns an endpoint's activities (a variant's, when variant
// is set), newest first, at most limit.
func (s *Store) Activities(ctx context.Context, endpoint, variant string, limit int) ([]Activity, error) {
	return s.activities(ctx, `WHERE endpoint = ? AND (? = '' OR variant = ?) ORDER BY started_at DESC, id DESC LIMIT ?`, endpoint, variant, variant, limit)
}

// open returns every activity still InProgress, oldest first: a Scaler
// that takes over the lease follows them to their end.
func (s *Store) open(ctx context.Context) ([]Activity, error) {
	return s.activities(ctx, `WHERE status = ? ORDER BY started_at, id`, InProgress)
}

func (s *Store) activities(ctx context.Context, where string, args ...any) ([]Activity, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, endpoint, variant, started_at, ended_at, status, from_count, to_count, cause, status_message
		FROM scaling_activities `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Activity{}
	for rows.Next() {
		var started, ended int64
		var a Activity
		if err := rows.Scan(&a.ID, &a.Endpoint, &a.Variant, &started, &ended, &a.StatusCode, &a.From, &a.To, &a.Cause, &a.StatusMessage); err != nil {
			return nil, err
		}
		b := newActivity(a.Endpoint, a.Variant, a.From, a.To, a.Cause, time.UnixMilli(started))
		b.ID, b.StatusCode, b.StatusMessage = a.ID, a.StatusCode, a.StatusMessage
		if ended != 0 {
			e := time.UnixMilli(ended).UTC()
			b.EndTime = &e
		}
		out = append(out, *b)
	}
	return out, rows.Err()
}
