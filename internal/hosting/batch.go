package hosting

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/hosting/batcher"
	"github.com/prometheus/client_golang/prometheus"
)

// Batch formats: how a batch is sent to a model server. See
// docs/batching.md for the contract.
const (
	// BatchInstances is the KServe v1 / TF-Serving shape: POST
	// /invocations with {"instances": [...]}, answered {"predictions":
	// [...]} with an optional "errors" array beside it.
	BatchInstances = "instances"
	// BatchJSONLines is one item per line (application/jsonlines),
	// answered one line per item: {"prediction": ...} or {"error": ...}.
	BatchJSONLines = "jsonlines"
)

// Batching asks Junction to gather concurrent invocations of one
// instance into batches: a model's server.batching.
type Batching struct {
	// MaxBatchSize is the most invocations one batch holds (1 to 1024).
	MaxBatchSize int `json:"max_batch_size"`
	// MaxQueueDelay is how long the oldest invocation waits for others
	// before a smaller batch goes out, as a duration ("5ms"); empty or
	// "0s" sends what is queued whenever the instance is free.
	MaxQueueDelay string `json:"max_queue_delay,omitempty"`
	// PreferredBatchSizes go out as soon as that many are queued.
	PreferredBatchSizes []int `json:"preferred_batch_sizes,omitempty"`
	// Format is instances (default) or jsonlines.
	Format string `json:"format,omitempty"`
	// MaxConcurrentBatches is how many batches an instance runs at once
	// (default 1).
	MaxConcurrentBatches int `json:"max_concurrent_batches,omitempty"`
}

// validate checks a model's batching and fills its defaults.
func (b *Batching) validate() []string {
	if b == nil {
		return nil
	}
	var errs []string
	if b.MaxBatchSize < 1 || b.MaxBatchSize > 1024 {
		errs = append(errs, fmt.Sprintf("server.batching.max_batch_size: %d must be between 1 and 1024", b.MaxBatchSize))
	}
	if b.MaxQueueDelay != "" {
		d, err := time.ParseDuration(b.MaxQueueDelay)
		if err != nil || d < 0 || d > time.Minute {
			errs = append(errs, fmt.Sprintf("server.batching.max_queue_delay: %q must be a duration from 0s to 1m, such as \"5ms\"", b.MaxQueueDelay))
		}
	}
	for i, p := range b.PreferredBatchSizes {
		if p < 1 || p > b.MaxBatchSize {
			errs = append(errs, fmt.Sprintf("server.batching.preferred_batch_sizes[%d]: %d must be between 1 and max_batch_size (%d)", i, p, b.MaxBatchSize))
		}
	}
	switch b.Format {
	case "":
		b.Format = BatchInstances
	case BatchInstances, BatchJSONLines:
	default:
		errs = append(errs, fmt.Sprintf("server.batching.format: %q must be instances or jsonlines", b.Format))
	}
	if b.MaxConcurrentBatches < 0 || b.MaxConcurrentBatches > 64 {
		errs = append(errs, fmt.Sprintf("server.batching.max_concurrent_batches: %d must be between 1 and 64", b.MaxConcurrentBatches))
	}
	return errs
}

func (b *Batching) delay() time.Duration {
	d, _ := time.ParseDuration(b.MaxQueueDelay)
	return d
}

// batchable reports whether an invocation can join a batch: the model
// batches, and the body is one JSON value with no per-call attributes
// (which a batch could not carry for it alone).
func batchable(v *variant, inv *Invocation) bool {
	return v.model.Server.Batching != nil && inv.CustomAttributes == "" &&
		strings.HasPrefix(mediaType(inv.ContentType), "application/json") && json.Valid(inv.Body)
}

func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// batcherOf returns the instance's batcher, made on first use.
func (p *plane) batcherOf(in *instance) *batcher.Batcher {
	if b := in.batch.Load(); b != nil {
		return b
	}
	cfg := in.v.model.Server.Batching
	m := p.batchMetrics()
	size := m.size.WithLabelValues(in.endpoint, in.v.spec.Name)
	wait := m.wait.WithLabelValues(in.endpoint, in.v.spec.Name)
	b := batcher.New(p.ctx, batcher.Options{
		MaxBatchSize: cfg.MaxBatchSize, MaxQueueDelay: cfg.delay(), Preferred: cfg.PreferredBatchSizes,
		MaxConcurrent: cfg.MaxConcurrentBatches,
		Observe: func(n int, oldest time.Duration) {
			size.Observe(float64(n))
			wait.Observe(oldest.Seconds())
		},
	}, func(ctx context.Context, items [][]byte) ([]batcher.Result, error) {
		return p.sendBatch(ctx, in, items)
	})
	if in.batch.CompareAndSwap(nil, b) {
		return b
	}
	return in.batch.Load()
}

// errBatchRefused marks a batch whose instance refused the connection:
// its items may go to another instance.
type errBatchRefused struct{ err *Error }

func (e errBatchRefused) Error() string { return e.err.Error() }

// sendBatched puts an invocation into its instance's next batch. retry
// is true when the batch never reached the server.
func (p *plane) sendBatched(ctx context.Context, in *instance, inv *Invocation) (*Result, error, bool) {
	r := p.batcherOf(in).Do(ctx, inv.Body)
	if r.Err != nil {
		var refused errBatchRefused
		if errors.As(r.Err, &refused) {
			return nil, refused.err, true
		}
		return nil, r.Err, false
	}
	return &Result{Variant: in.v.spec.Name, Instance: in.ID(), ContentType: "application/json", Body: r.Body, ModelLatency: r.Latency}, nil, false
}

// sendBatch makes one batch call to an instance. A batch the server
// refuses whole with a 4xx is sent again item by item, so that one bad
// item fails alone even on a server that cannot report items' errors.
func (p *plane) sendBatch(ctx context.Context, in *instance, items [][]byte) ([]batcher.Result, error) {
	format := in.v.model.Server.Batching.Format
	status, body, err := p.postBatch(ctx, in, format, items)
	if err != nil {
		return nil, err
	}
	if status/100 == 4 && len(items) > 1 {
		out := make([]batcher.Result, len(items))
		var wg sync.WaitGroup
		for i := range items {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rs, err := p.sendBatch(ctx, in, items[i:i+1])
				if err != nil {
					out[i] = batcher.Result{Err: err}
				} else {
					out[i] = rs[0]
				}
			}()
		}
		wg.Wait()
		return out, nil
	}
	if status/100 != 2 {
		return nil, ModelFailed(in.v.spec.Name, status, strings.TrimSpace(string(body)))
	}
	results, err := decodeBatch(format, body, len(items))
	if err != nil {
		return nil, ModelFailed(in.v.spec.Name, status, "the model server's batch answer breaks the batch contract: "+err.Error())
	}
	for i := range results {
		if ie := results[i].itemErr; ie != nil {
			results[i].Err = ModelFailed(in.v.spec.Name, ie.status(), ie.Message)
		}
	}
	out := make([]batcher.Result, len(results))
	for i, r := range results {
		out[i] = r.Result
	}
	return out, nil
}

// postBatch sends a batch and reads the answer.
func (p *plane) postBatch(ctx context.Context, in *instance, format string, items [][]byte) (int, []byte, error) {
	base := in.base.Load()
	if base == nil {
		return 0, nil, errBatchRefused{Unavailable("instance %s has no address", in.ID())}
	}
	payload, ctype := encodeBatch(format, items)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *base+"/invocations", bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", ctype)
	resp, err := p.client.Do(req)
	if err != nil {
		terr, retry := p.transportError(ctx, in, err)
		if he, ok := terr.(*Error); ok && retry {
			return 0, nil, errBatchRefused{he}
		}
		return 0, nil, terr
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, ModelFailed(in.v.spec.Name, resp.StatusCode, "the model server's answer was cut off: "+err.Error())
	}
	if len(body) > maxResponseBytes {
		return 0, nil, ModelFailed(in.v.spec.Name, resp.StatusCode, fmt.Sprintf("the model server's answer exceeds %d bytes", maxResponseBytes))
	}
	return resp.StatusCode, body, nil
}

// batchMetrics are the controller's batching histograms.
type batchMetrics struct {
	once sync.Once
	size *prometheus.HistogramVec
	wait *prometheus.HistogramVec
}

func (p *plane) batchMetrics() *batchMetrics {
	m := &p.batching
	m.once.Do(func() {
		m.size = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "junction_sagemaker_batch_size",
			Help:    "Invocations per batch Junction sent to a model server, by endpoint and variant.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}}, []string{"endpoint", "variant"})
		m.wait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "junction_sagemaker_batch_queue_delay_seconds",
			Help:    "How long the oldest invocation of a batch waited in Junction's queue before the batch went out.",
			Buckets: []float64{0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1}}, []string{"endpoint", "variant"})
	})
	return m
}

// BatchCollectors are the batching metrics, for the server to register.
func (p *plane) BatchCollectors() []prometheus.Collector {
	m := p.batchMetrics()
	return []prometheus.Collector{m.size, m.wait}
}
