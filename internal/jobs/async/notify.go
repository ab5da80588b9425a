package async

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// notifyConcurrency bounds the webhook calls in flight.
const notifyConcurrency = 8

// Notification is the JSON body a webhook receives when an async
// invocation ends: the shape of SageMaker's SNS message for async
// inference, so a consumer written for one reads the other.
type Notification struct {
	AWSRegion         string             `json:"awsRegion"`
	EventTime         string             `json:"eventTime"`
	ReceivedTime      string             `json:"receivedTime"`
	InvocationStatus  string             `json:"invocationStatus"`
	FailureReason     string             `json:"failureReason,omitempty"`
	RequestParameters NotificationInput  `json:"requestParameters"`
	Response          NotificationOutput `json:"responseParameters"`
	InferenceID       string             `json:"inferenceId"`
	EventVersion      string             `json:"eventVersion"`
	EventSource       string             `json:"eventSource"`
	EventName         string             `json:"eventName"`
}

// NotificationInput says what was asked.
type NotificationInput struct {
	ContentType   string `json:"contentType,omitempty"`
	EndpointName  string `json:"endpointName"`
	InputLocation string `json:"inputLocation,omitempty"`
}

// NotificationOutput says where the answer or the failure is.
type NotificationOutput struct {
	ContentType     string `json:"contentType,omitempty"`
	OutputLocation  string `json:"sagemakerOutputLocation,omitempty"`
	FailureLocation string `json:"sagemakerFailureLocation,omitempty"`
}

// NotificationIDHeader carries the request's id on every delivery of its
// notification, so that a receiver can drop a repeat.
const NotificationIDHeader = "X-Junction-Async-Request-Id"

func (q *Queue) notifyLoop() {
	defer q.wg.Done()
	t := time.NewTicker(q.opts.Poll)
	defer t.Stop()
	client := &http.Client{Timeout: q.opts.NotifyTimeout}
	sem := make(chan struct{}, notifyConcurrency)
	var sending sync.WaitGroup
	defer sending.Wait()
	for {
		for _, n := range q.dueNotifications(sem) {
			sending.Add(1)
			go func() {
				defer sending.Done()
				defer func() { <-sem }()
				q.deliver(client, n)
			}()
		}
		select {
		case <-q.ctx.Done():
			return
		case <-q.notify:
		case <-t.C:
		}
	}
}

// pending is a notification leased for delivery.
type pending struct {
	id, endpoint, state, hook string
	attempts                  int
	body                      []byte
}

// dueNotifications leases due notifications, as many as sem has room
// for (taking a slot for each). A leased notification is not due again
// until its delivery had time to end, so one replica or another delivers
// it once, unless the deliverer dies mid-call.
func (q *Queue) dueNotifications(sem chan struct{}) []*pending {
	ctx, cancel := context.WithTimeout(q.ctx, 10*time.Second)
	defer cancel()
	now := time.Now()
	ids, err := q.ids(ctx, `SELECT id FROM async_requests WHERE notify = ? AND notify_at <= ? ORDER BY notify_at LIMIT ?`,
		notifyPending, now.UnixMilli(), notifyConcurrency)
	if err != nil {
		return nil
	}
	var out []*pending
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		default:
			return out
		}
		var p pending
		var in, out_, fail, errMsg, ct, rct, inf, hookOK, hookErr string
		var enq, fin int64
		err := q.db.QueryRowContext(ctx, `UPDATE async_requests SET notify_at = ?, notify_attempts = notify_attempts + 1
			WHERE id = ? AND notify = ? AND notify_at <= ?
			RETURNING id, endpoint, state, notify_attempts, input, output, failure, error, content_type, result_content_type, inference_id,
				success_webhook, error_webhook, enqueued_at, finished_at`,
			now.Add(2*q.opts.NotifyTimeout).UnixMilli(), id, notifyPending, now.UnixMilli()).Scan(
			&p.id, &p.endpoint, &p.state, &p.attempts, &in, &out_, &fail, &errMsg, &ct, &rct, &inf, &hookOK, &hookErr, &enq, &fin)
		if err != nil {
			<-sem
			continue
		}
		n := Notification{AWSRegion: "local", EventTime: time.UnixMilli(fin).UTC().Format(time.RFC3339Nano),
			ReceivedTime: time.UnixMilli(enq).UTC().Format(time.RFC3339Nano), InvocationStatus: "Completed",
			RequestParameters: NotificationInput{ContentType: ct, EndpointName: p.endpoint, InputLocation: in},
			Response:          NotificationOutput{ContentType: rct, OutputLocation: out_},
			InferenceID:       inf, EventVersion: "1.0", EventSource: "aws:sagemaker", EventName: "InferenceResult"}
		p.hook = hookOK
		if p.state == StateFailed {
			n.InvocationStatus, n.FailureReason, p.hook = "Failed", errMsg, hookErr
			n.Response = NotificationOutput{FailureLocation: fail}
		}
		p.body, _ = json.Marshal(n)
		out = append(out, &p)
	}
	return out
}

// deliver posts one notification and records the outcome: sent, due
// again after a backoff, or given up after NotifyAttempts.
func (q *Queue) deliver(client *http.Client, p *pending) {
	ctx := context.WithoutCancel(q.ctx)
	err := post(ctx, client, p)
	uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err == nil {
		q.stats.notified.Add(1)
		q.db.ExecContext(uctx, `UPDATE async_requests SET notify = ? WHERE id = ?`, notifySent, p.id)
		return
	}
	if p.attempts >= q.opts.NotifyAttempts {
		q.stats.notifyFailed.Add(1)
		q.db.ExecContext(uctx, `UPDATE async_requests SET notify = ? WHERE id = ?`, notifyFailed, p.id)
		q.event(p.endpoint, fmt.Sprintf("async invocation %s: notification to %s given up after %d attempts: %v", p.id, p.hook, p.attempts, err))
		return
	}
	q.stats.notifyRetries.Add(1)
	next := time.Now().Add(backoff(q.opts.NotifyBackoff, p.attempts-1, 5*time.Minute))
	q.db.ExecContext(uctx, `UPDATE async_requests SET notify_at = ? WHERE id = ? AND notify = ?`, next.UnixMilli(), p.id, notifyPending)
}

func post(ctx context.Context, client *http.Client, p *pending) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.hook, bytes.NewReader(p.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(NotificationIDHeader, p.id)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return nil
}
