package server

import (
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/junctionhq/junction/internal/api"
	jobsapi "github.com/junctionhq/junction/internal/api/jobs"
	oaiapi "github.com/junctionhq/junction/internal/api/openai"
	sagemakerapi "github.com/junctionhq/junction/internal/api/sagemaker"
	transformapi "github.com/junctionhq/junction/internal/api/transform"
	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/jobs/batch"
	"github.com/junctionhq/junction/internal/jobs/batch/transform"
	"github.com/junctionhq/junction/internal/platform/store"
)

// batchJobs is the batch engine and what serves it.
type batchJobs struct {
	engine *batch.Engine
	files  *batch.Files
}

// newBatch builds the batch engine over a copy of the gateway whose ledger
// prices records at the batch price, and registers the Files and Batch
// APIs. Files live under DATA_DIR/batch/files.
func (s *Server) newBatch(mux *http.ServeMux, adminAuth func(http.Handler) http.Handler, gw *gateway.Gateway) error {
	cfg := s.cfg.Batch
	files, err := batch.NewFiles(s.db, filepath.Join(s.cfg.Server.DataDir, "batch", "files"))
	if err != nil {
		return err
	}
	discounts := map[string]float64{}
	for _, m := range s.cfg.Models {
		if m.Price != nil && m.Price.BatchDiscount != nil {
			discounts[m.Name] = *m.Price.BatchDiscount
		}
	}
	bgw := *gw
	bgw.Ledger = batch.Priced{Next: gw.Ledger, Discount: func(model string) float64 {
		if d, ok := discounts[model]; ok {
			return d
		}
		return *cfg.Discount
	}}
	caller := &batch.Caller{Gateway: &bgw, Keys: s.keys, RequestID: func() string { return s.nextRequestID() + ".batch" }}
	kinds := map[string]batch.Kind{
		batch.KindOpenAI:    &batch.OpenAI{Caller: caller, Files: files},
		jobsapi.KindBedrock: &jobsapi.Bedrock{Caller: caller},
	}
	// SageMaker batch transform runs transient endpoints of hosted models.
	var tk *transform.Transform
	if s.hosting != nil {
		s3, err := newS3(s.cfg)
		if err != nil {
			return err
		}
		tk = &transform.Transform{Caller: caller, Hosting: s.hosting, Objects: &blob.Objects{S3: s3}}
		kinds[transform.Kind] = tk
	}
	share := *cfg.InteractiveShare
	engine := batch.New(s.db, kinds, batch.Options{
		Concurrency: cfg.Concurrency, MaxAttempts: cfg.MaxAttempts, RetryBackoff: cfg.RetryBackoff, MaxJobs: cfg.MaxJobs,
		PollInterval: cfg.PollInterval, Exclusive: store.DialectOf(s.db) == store.SQLite, Log: s.log,
		PerSecond: func(model string) float64 {
			rpm, ok := cfg.RateLimits[model]
			if !ok {
				return 0
			}
			return float64(rpm) / 60 * (1 - share)
		},
	})
	s.batch = &batchJobs{engine: engine, files: files}
	s.metrics.Register(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_batch_records_completed_total",
			Help: "Batch records this replica finished with an answer."}, func() float64 { return float64(engine.Stats().Completed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_batch_records_failed_total",
			Help: "Batch records this replica finished with an error."}, func() float64 { return float64(engine.Stats().Failed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_batch_retries_total",
			Help: "Upstream calls for batch records beyond one per record (429s, 5xx)."}, func() float64 { return float64(engine.Stats().Retries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "junction_batch_jobs_running",
			Help: "Batch jobs this replica is running."}, func() float64 { return float64(engine.Stats().Running) }),
	)
	oai := &oaiapi.Batches{Engine: engine, Files: files, MaxFileBytes: cfg.MaxFileBytes}
	oai.Register(mux, func(h http.Handler) http.Handler { return api.Authenticate(s.keys, false, oaiapi.WriteError, h) })
	jh := &jobsapi.Handler{Engine: engine}
	jh.Register(mux, adminAuth)
	jh.RegisterBedrock(mux, adminAuth)
	if tk != nil {
		th := &transformapi.Handler{Engine: engine, Hosting: s.hosting, Kind: tk, Auth: api.NewAWSAuth(s.keys, s.creds, sagemakerapi.SigningName)}
		th.Register(mux, adminAuth)
	}
	return nil
}
