package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/jobs/async"
	"github.com/junctionhq/junction/internal/platform/config"
)

// AsyncSurface is the ledger's surface of an async invocation, served
// from the queue.
const AsyncSurface = "sagemaker-async"

// asyncCalls is the queue's backend: the hosting controller describes
// endpoints, and each invocation runs through the gateway's call
// lifecycle (admission, one ledger record, metrics) once the gateway is
// wired (registerHosting).
type asyncCalls struct {
	*hosting.Controller
	gw *gateway.Gateway
	id func() string
}

// Invoke runs one queued invocation through the gateway.
func (a *asyncCalls) Invoke(ctx context.Context, inv *hosting.Invocation) (*hosting.Result, error) {
	if a.gw == nil {
		return a.Controller.Invoke(ctx, inv)
	}
	c := &gateway.Call{Surface: AsyncSurface, RequestID: a.id(), Start: time.Now()}
	return a.gw.Invoke(ctx, c, inv)
}

// newAsync builds the queue of async invocations over the database,
// served by the hosting controller, reading and writing objects at
// file:// and s3:// URIs.
func (s *Server) newAsync(cfg *config.Config, log *slog.Logger) (*async.Queue, error) {
	s3, err := newS3(cfg)
	if err != nil {
		return nil, err
	}
	s.asyncCalls = &asyncCalls{Controller: s.hosting, id: s.nextRequestID}
	a := cfg.Async
	return async.New(s.hosting.Store().DB, s.asyncCalls, s.hosting.Store(), &blob.Objects{S3: s3}, async.Options{
		LeaseTTL: a.LeaseTTL, MaxAttempts: a.MaxAttempts, MaxInputBytes: a.MaxInputBytes, FileInputDirs: a.FileInputDirs,
		NotifyAttempts: a.NotifyAttempts, Retention: a.Retention,
	}, log), nil
}
