package hosting

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
)

// plane is the invocation data plane: it takes each invocation and chat
// call of an endpoint to one of its instances, reading the routing
// snapshot the reconciler publishes (routes) and nothing else of it —
// one pick-and-retry path for byoc and OpenAI-compatible servers
// (attempt.go), holds while no instance is ready (hold.go), request
// batching (batch.go), multi-model placement (mme.go), shadow copies and
// data capture. It writes no spec and starts no instance; a cold start
// asks the spec writer for one.
type plane struct {
	*routes
	store  *Store
	blobs  Artifacts
	client *http.Client
	opts   Options
	log    *slog.Logger
	// meter bills serverless calls (serverless.go).
	meter *meter
	// spec is the spec writer, for a cold start and the history.
	spec specWriter
	// routeWaiters counts the invocations waiting for an endpoint to
	// become routable (awaitRoute).
	routeWaiters atomic.Int64
	shadowSem    chan struct{}
	batching     batchMetrics // batch.go
	multiModel   mmeMetrics   // mme_metrics.go
	// ctx and wg own the background work the plane sets off (shadow
	// calls, cold starts, model loads); the Controller ends and waits
	// for it.
	ctx context.Context
	wg  *sync.WaitGroup
}

// specWriter is what the data plane asks of the rest of hosting.
type specWriter interface {
	// SetInstanceCount asks for a variant's instance count (a cold start).
	SetInstanceCount(ctx context.Context, endpoint, variant string, n int) error
	// Event appends a line to an endpoint's history.
	Event(endpoint, msg string)
}
