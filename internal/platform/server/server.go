// Package server assembles Junction: it opens the data directory, builds
// the providers, router, ledger and surfaces from the config, serves them
// over HTTP, and shuts down gracefully, draining requests and the ledger.
package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/api/admin"
	anthropicapi "github.com/junctionhq/junction/internal/api/anthropic"
	bedrockapi "github.com/junctionhq/junction/internal/api/bedrock"
	guardrailapi "github.com/junctionhq/junction/internal/api/guardrail"
	oaiapi "github.com/junctionhq/junction/internal/api/openai"
	"github.com/junctionhq/junction/internal/auth/awscreds"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/auth/secret"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/governance/audit"
	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/hosting/capture"
	"github.com/junctionhq/junction/internal/jobs/async"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/h1srv"
	"github.com/junctionhq/junction/internal/platform/metrics"
	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/tracing"
	"github.com/junctionhq/junction/internal/promptroute"
	"github.com/junctionhq/junction/internal/provider"
	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/tokens"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Server is a running Junction.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	db      *sql.DB
	keys    *keys.Store
	ledger  *ledger.Writer
	router  *router.Router
	metrics *metrics.Metrics
	creds   *awscreds.Store
	// hosting runs self-hosted endpoints; nil when hosting is disabled.
	hosting *hosting.Controller
	// scaler sizes endpoints by their scaling policies (with hosting).
	scaler *autoscale.Scaler
	// async queues and serves async invocations; nil with hosting.
	async      *async.Queue
	asyncCalls *asyncCalls
	// capture writes the traffic of endpoints with data_capture (with
	// hosting).
	capture *capture.Writer
	// gov enforces budgets and rate limits.
	gov *governance.Governor
	// tracer exports traces; nil when tracing is off.
	tracer *tracing.Tracer
	http   *http.Server
	// lean serves cleartext HTTP/1.1 (server.http1: lean), handing the
	// rest to http; nil when http serves everything.
	lean *h1srv.Server
	ln   net.Listener
	// bodies bounds the request bodies held in memory at once.
	bodies *api.BodyBudget
	// batch runs batch jobs; nil when batch is disabled.
	batch *batchJobs
	// closers closes what New, Listen and Serve opened, in reverse, once.
	closers teardown

	// GeneratedAdminKey is set when this start made the admin key; it is
	// shown once and never stored in plaintext.
	GeneratedAdminKey string

	reqPrefix string
	reqSeq    atomic.Uint64
	ready     atomic.Bool
}

// New builds a Server from cfg. Nothing listens until Listen.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	sec, problems := decodeSections(cfg)
	if len(problems) > 0 {
		return nil, &config.ValidationError{Problems: problems}
	}
	if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	tlsCfg, err := tlsConfig(cfg.Server.TLS)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, metrics: metrics.New()}
	s.closers.log = log
	// 64 random bits: the ledger's replay deduplicates by request id, so two
	// process starts must not draw the same prefix in the life of a ledger.
	var prefix [8]byte
	rand.Read(prefix[:])
	s.reqPrefix = hex.EncodeToString(prefix[:])

	// SQLite in the data directory, or PostgreSQL shared with other replicas.
	dsn := filepath.Join(cfg.Server.DataDir, "junction.db")
	if cfg.Server.Database != "" {
		dsn = cfg.Server.Database
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	s.db = db
	s.closers.add("database", func(context.Context) error { return db.Close() })
	if err := s.startTracing(ctx); err != nil {
		return nil, s.abort(err)
	}
	if s.keys, err = keys.Open(ctx, db); err != nil {
		return nil, s.abort(err)
	}
	if err := s.bootstrapAdmin(ctx); err != nil {
		return nil, s.abort(err)
	}
	lopt := ledger.Options{
		QueueSize: cfg.Ledger.QueueSize, BatchSize: cfg.Ledger.BatchSize, FlushInterval: cfg.Ledger.FlushInterval,
		SpillPath: filepath.Join(cfg.Server.DataDir, "ledger-spill.jsonl"), Logger: log,
		RetainRaw:  time.Duration(cfg.Ledger.Retention.Raw),
		JournalDir: filepath.Join(cfg.Server.DataDir, "ledger-journal"),
		NoJournal:  cfg.Ledger.Journal != nil && !*cfg.Ledger.Journal,
	}
	s.ledger, err = ledger.NewWriter(ctx, db, lopt)
	if err != nil {
		return nil, s.abort(err)
	}
	s.closers.add("ledger", s.ledger.Close)
	catalog := ledger.Builtin()
	// The config's prices join the catalog under the model's name (and its
	// upstream id, when the catalog has no price for it), so the advisor
	// prices configured models as the ledger does.
	for _, m := range cfg.Models {
		if m.Price == nil {
			continue
		}
		p := ledger.Price{InputPer1K: m.Price.InputPer1K, OutputPer1K: m.Price.OutputPer1K,
			CachedInputPer1K: m.Price.CachedInputPer1K, CacheWritePer1K: m.Price.CacheWritePer1K, MaxOutputTokens: m.Price.MaxOutputTokens}
		catalog.Set(m.Name, p)
		if _, known := catalog.Lookup(m.UpstreamModel); !known && m.UpstreamModel != "" {
			catalog.Set(m.UpstreamModel, p)
		}
	}
	var ropts router.Options
	if !cfg.Hosting.Disabled {
		if s.capture, err = newCapture(cfg, log); err != nil {
			return nil, s.abort(err)
		}
		// Closed after hosting (added before it): the last invocations'
		// records are written.
		s.closers.add("data capture", func(ctx context.Context) error { s.capture.Close(ctx); return nil })
		if s.hosting, err = newHosting(cfg, db, catalog, s.capture, log); err != nil {
			return nil, s.abort(err)
		}
		s.closers.add("hosting", s.hosting.Close)
		ropts.Endpoints, ropts.ServesEndpoint, ropts.ListEndpoints = s.hosting.Provider(), s.hosting.Serves, s.hosting.ChatEndpoints
		ropts.EndpointCold, ropts.EndpointWait = s.hosting.Cold, s.hosting.Wait
		if s.async, err = s.newAsync(cfg, log); err != nil {
			return nil, s.abort(err)
		}
	}
	s.router, err = router.New(ctx, cfg, catalog, func(ctx context.Context, p config.Provider) (llm.Provider, error) {
		up, err := provider.New(ctx, p, cfg.Server.UpstreamTimeout)
		if err != nil {
			return nil, err
		}
		return s.traceProvider(p, up), nil
	}, ropts)
	if err != nil {
		return nil, s.abort(err)
	}
	for _, rule := range cfg.Rules {
		if rule.When.MinInputTokens > 0 || rule.When.MaxInputTokens > 0 {
			go tokens.Warm() // load the vocabularies before the first request needs them
			break
		}
	}
	s.registerLedgerMetrics()
	// Budgets are seeded from the ledger, so the governor starts after the
	// ledger has replayed what an earlier run spilled.
	s.gov, err = governance.New(ctx, sec.governance, governance.Options{DB: db, Log: log,
		Lease: max(budget.DefaultLease, 2*cfg.Server.UpstreamTimeout)})
	if err != nil {
		return nil, s.abort(err)
	}
	s.closers.add("governance", s.gov.Close)
	s.metrics.WatchBudgets(s.budgetSpend)
	s.registerGovernanceMetrics()
	cache, err := s.responseCache(cfg.Cache)
	if err != nil {
		return nil, s.abort(err)
	}
	gw := &gateway.Gateway{Router: s.router, Ledger: s.ledger, Metrics: s.metrics, Timeout: cfg.Server.UpstreamTimeout,
		MaxAttempts: cfg.Router.MaxAttempts, RetryBackoff: cfg.Router.RetryBackoff, Governance: s.gov, Cache: cache}

	mux := http.NewServeMux()
	oai := &oaiapi.Handler{Gateway: gw, MaxBodyBytes: cfg.Server.MaxBodyBytes, Log: log,
		Responses: &oaiapi.ResponseStore{DB: db, Retention: cfg.Responses.Retention}}
	oai.Register(mux, func(h http.Handler) http.Handler { return api.Authenticate(s.keys, false, oaiapi.WriteError, h) })
	ant := &anthropicapi.Handler{Gateway: gw, MaxBodyBytes: cfg.Server.MaxBodyBytes, Log: log}
	ant.Register(mux, func(h http.Handler) http.Handler { return api.Authenticate(s.keys, false, anthropicapi.WriteError, h) })
	// Bedrock runtime: AWS SDK clients sign with access keys issued for a
	// Junction key (kept sealed under the data directory's master key).
	creds, err := awscreds.Open(ctx, db, filepath.Join(cfg.Server.DataDir, secret.KeyFile))
	s.creds = creds
	if err != nil {
		return nil, s.abort(err)
	}
	brk := &bedrockapi.Handler{Gateway: gw, Auth: api.NewAWSAuth(s.keys, creds, bedrockapi.SigningName), MaxBodyBytes: cfg.Server.MaxBodyBytes, Log: log}
	brk.Register(mux)
	feedback, err := s.promptScorers(ctx, cfg, db)
	if err != nil {
		return nil, s.abort(err)
	}
	// Every change made through an admin route is recorded in the audit
	// log, with the admin key that made it.
	auditLog := &audit.Log{DB: db, Logger: log}
	adm := &admin.Handler{Keys: s.keys, DB: db, AWSCreds: creds, Catalog: catalog, Governance: s.gov, Audit: auditLog}
	adminAuth := func(h http.Handler) http.Handler {
		return api.Authenticate(s.keys, true, admin.WriteError, auditLog.Wrap(h))
	}
	adm.Register(mux, adminAuth)
	adm.RegisterFeedback(mux, adminAuth, feedback)
	adm.RegisterAdvisor(mux, adminAuth)
	// Guardrails: content filters are judged by a model Junction serves,
	// called through the gateway like any other request.
	guards, err := guardrail.NewRegistry(sec.guardrails, &guardrail.Store{DB: db}, guardrail.Options{
		Classifier: guardrail.ChatClassifier{Chat: func(ctx context.Context, req *llm.Request) (*llm.Response, error) {
			c := &gateway.Call{Surface: "guardrail", Model: req.Model, Start: time.Now(), RequestID: s.nextRequestID() + ".classify"}
			if err := gw.Resolve(c); err != nil {
				return nil, err
			}
			return gw.Chat(ctx, c, req)
		}},
		// Topics matched by meaning embed with a model Junction serves.
		Embed: s.embed,
	})
	if err != nil {
		return nil, s.abort(err)
	}
	gw.Guardrails = guards
	gr := &guardrailapi.Handler{Registry: guards, Auth: brk.Auth, MaxBodyBytes: cfg.Server.MaxBodyBytes}
	gr.Register(mux, adminAuth)
	if s.hosting != nil {
		s.registerHosting(mux, adminAuth, gw, s.keys, creds)
	}
	if !cfg.Batch.Disabled {
		if err := s.newBatch(mux, adminAuth, gw); err != nil {
			return nil, s.abort(err)
		}
	}
	s.registerConsole(mux, auditLog, adm, gr, gw)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		oaiapi.WriteError(w, r, llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	s.bodies = api.NewBodyBudget(cfg.Server.MaxInflightBodyBytes)
	s.registerBodyMetrics()
	s.http = &http.Server{
		Handler:           s.wrap(s.traced(mux)),
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		// ReadTimeout bounds reading the request, body included; net/http
		// lifts it once the body has been read, so it never cuts a
		// response (TestLongStreamOutlivesTheBodyReadTimeout).
		ReadTimeout: cfg.Server.BodyReadTimeout,
		IdleTimeout: cfg.Server.IdleTimeout,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Protocols:   protocols(),
		TLSConfig:   tlsCfg,
	}
	if tlsCfg == nil && cfg.Server.HTTP1 == config.HTTP1Lean {
		s.lean = &h1srv.Server{Handler: s.http.Handler, Fallback: s.http,
			ReadHeaderTimeout: s.http.ReadHeaderTimeout, ReadTimeout: s.http.ReadTimeout, IdleTimeout: s.http.IdleTimeout,
			ErrorLog: s.http.ErrorLog}
	}
	return s, nil
}

// abort closes what a New that failed with err had opened, and returns
// err.
func (s *Server) abort(err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout)
	defer cancel()
	if cerr := s.closers.run(ctx); cerr != nil {
		s.log.Warn("startup failed; closing what was opened failed too", "err", cerr)
	}
	return err
}

// promptScorers opens the prompt-feedback store and gives the router's
// prompt routes their scorers. The knn scorer embeds prompts with the
// embeddings model its routes name (they must agree on one).
func (s *Server) promptScorers(ctx context.Context, cfg *config.Config, db *sql.DB) (*promptroute.FeedbackStore, error) {
	embed := promptroute.EmbedFunc(func(context.Context, []string) ([][]float32, error) {
		return nil, errors.New("no embeddings model is configured for prompt feedback: name one as embedding_model on a prompt_router route with scorer knn")
	})
	knnRoutes := 0
	for _, rc := range cfg.Routes {
		if rc.Type != config.RoutePromptRouter || rc.Scorer != "knn" {
			continue
		}
		knnRoutes++
		d := s.router.Deployment(rc.EmbeddingModel)
		var e llm.Embedder
		ok := false
		if d != nil {
			e, ok = d.Upstream.(llm.Embedder)
		}
		if !ok {
			return nil, fmt.Errorf("routes %s: embedding_model %q has no embeddings API", rc.Name, rc.EmbeddingModel)
		}
		embed = promptroute.EmbedWith(e, d.UpstreamModel)
	}
	feedback, err := promptroute.OpenFeedback(ctx, db, embed)
	if err != nil {
		return nil, err
	}
	sc := router.Scorers{Features: promptroute.FeatureScorer{}}
	if knnRoutes > 0 {
		sc.KNN = promptroute.NewKNN(embed, feedback, 10)
	}
	s.router.SetScorers(sc)
	return feedback, nil
}

// bootstrapAdmin makes sure an admin key exists: the configured one, or a
// generated one shown once.
func (s *Server) bootstrapAdmin(ctx context.Context) error {
	if k := s.cfg.Auth.AdminKey; k != "" {
		if len(k) < 16 {
			return errors.New("auth.admin_key: must be at least 16 characters")
		}
		return s.keys.Ensure(ctx, "admin (config)", k)
	}
	if s.keys.HasAdmin() {
		return nil
	}
	_, plain, err := s.keys.Create(ctx, "admin", nil, true)
	if err != nil {
		return err
	}
	s.GeneratedAdminKey = plain
	return nil
}

func (s *Server) registerLedgerMetrics() {
	l := s.ledger
	s.metrics.Register(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_ledger_records_written_total",
			Help: "Usage records committed to the database."}, func() float64 { return float64(l.Stats().Written) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_ledger_records_spilled_total",
			Help: "Usage records the database refused, saved to the spill file for replay."}, func() float64 { return float64(l.Stats().Spilled) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_ledger_queue_full_waits_total",
			Help: "Times a request waited for room in the ledger queue."}, func() float64 { return float64(l.Stats().QueueFullWaits) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "junction_ledger_queue_length",
			Help: "Usage records waiting to be written."}, func() float64 { return float64(l.Stats().Queued) }),
	)
}

func (s *Server) registerGovernanceMetrics() {
	g := s.gov
	s.metrics.Register(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_governance_unavailable_total",
			Help: "Requests refused with 503 because Redis, which holds the limits and budgets, could not be reached or answered in error."},
			func() float64 { return float64(g.Stats().Unavailable) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_governance_timeouts_total",
			Help: "Of those, the requests Redis did not answer within governance.redis_timeout."},
			func() float64 { return float64(g.Stats().TimedOut) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_governance_admitted_total",
			Help: "Admissions sent to Redis."}, func() float64 { return float64(g.Stats().Admitted) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_governance_admit_batches_total",
			Help: "Round trips that carried those admissions."}, func() float64 { return float64(g.Stats().AdmitBatches) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_governance_settled_total",
			Help: "Requests whose real cost and tokens were settled on Redis."}, func() float64 { return float64(g.Stats().Settled) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_governance_settle_batches_total",
			Help: "Round trips that carried those settlements."}, func() float64 { return float64(g.Stats().SettleBatches) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_governance_settle_failures_total",
			Help: "Settlement batches Redis did not take: their reservations stand until their lease ends."},
			func() float64 { return float64(g.Stats().SettleFailures) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_governance_slices_total",
			Help: "Slices of leased rate limits and budgets this replica took (governance.leases)."},
			func() float64 { return float64(g.Stats().Slices) }),
	)
}

func (s *Server) registerBodyMetrics() {
	b := s.bodies
	s.metrics.Register(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "junction_request_body_bytes_in_flight",
			Help: "Bytes of request bodies held in memory now (bounded by server.max_inflight_body_bytes)."}, func() float64 { return float64(b.InUse()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "junction_request_bodies_refused_total",
			Help: "Requests answered 503 because their body did not fit in server.max_inflight_body_bytes."}, func() float64 { return float64(b.Refused.Load()) }),
	)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	if !s.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"shutting down"}`))
		return
	}
	if err := s.db.PingContext(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"status":"database unavailable"}`)
		return
	}
	w.Write([]byte(`{"status":"ready"}`))
}

// statusWriter records the status for the access log and passes Flush
// through for streams.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap gives every request an id (returned as X-Request-Id), a start time,
// its share of the in-flight body budget and an access-log line.
func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &api.Info{Start: time.Now(), RequestID: s.nextRequestID(), Bodies: s.bodies}
		defer info.ReleaseBody()
		w.Header().Set("X-Request-Id", info.RequestID)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(api.WithInfo(r.Context(), info)))
		if r.URL.Path == "/metrics" || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			return
		}
		attrs := []slog.Attr{
			slog.String("request_id", info.RequestID), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Float64("duration_ms", float64(time.Since(info.Start).Microseconds())/1000),
		}
		if info.Key != nil {
			attrs = append(attrs, slog.String("key", info.Key.Name))
		}
		if cid := r.Header.Get("X-Request-Id"); cid != "" {
			attrs = append(attrs, slog.String("client_request_id", cid))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// nextRequestID returns a request id unique across restarts: a random
// per-process prefix and a counter.
func (s *Server) nextRequestID() string {
	return s.reqPrefix + strconv.FormatUint(s.reqSeq.Add(1), 36)
}

// SharedRefresh is how often a replica on a shared database reloads the
// keys and AWS credentials other replicas may have made or revoked.
const SharedRefresh = 2 * time.Second

func (s *Server) refreshShared(ctx context.Context) {
	t := time.NewTicker(SharedRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.keys.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("keys: refresh from the shared database failed", "err", err)
		}
		if err := s.creds.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("AWS credentials: refresh from the shared database failed", "err", err)
		}
	}
}

// Listen binds the configured address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Server.Addr, err)
	}
	s.ln = ln
	s.closers.add("listener", func(context.Context) error {
		// Shutting the HTTP server down closed it already, once serving.
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	return nil
}

// Addr is the address being listened on, after Listen.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends, then shuts down gracefully (Close): it
// stops accepting, waits for in-flight requests (up to
// server.shutdown_timeout), stops the workers, drains the ledger and
// closes the database.
func (s *Server) Serve(ctx context.Context) error {
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout)
		defer cancel()
		if err := s.Close(sctx); err != nil {
			s.log.Warn("shutdown: not everything closed cleanly", "err", err)
		}
	}()
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	if s.hosting != nil {
		// Endpoints stored by an earlier run come back (adopting the model
		// servers it left running, when configured to leave them).
		if err := s.hosting.Start(ctx); err != nil {
			return err
		}
		s.scaler.Start()
		s.closers.add("autoscaler", func(context.Context) error { s.scaler.Close(); return nil })
		s.async.Start()
		s.closers.add("async queue", func(ctx context.Context) error { s.async.Close(ctx); return nil })
		s.capture.Start()
	}
	if store.DialectOf(s.db) == store.Postgres {
		// Replicas share the database: what another one changes in keys
		// and AWS credentials takes effect here within SharedRefresh.
		s.background("shared refresh", ctx, s.refreshShared)
	}
	if s.batch != nil {
		s.background("batch engine", ctx, s.batch.engine.Run)
	}
	s.ready.Store(true)
	errc := make(chan error, 1)
	go func() { errc <- s.serve() }()
	s.closers.add("http server", func(ctx context.Context) error {
		s.ready.Store(false)
		var srv interface {
			Shutdown(context.Context) error
			Close() error
		} = s.http
		if s.lean != nil {
			srv = s.lean
		}
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
			return fmt.Errorf("in-flight requests did not finish in time: %w", err)
		}
		return nil
	})
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// background runs f until ctx ends or the server closes; closing waits
// for f to return.
func (s *Server) background(name string, ctx context.Context, f func(context.Context)) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	s.closers.add(name, func(wait context.Context) error {
		cancel()
		select {
		case <-done:
			return nil
		case <-wait.Done():
			return fmt.Errorf("did not stop in time: %w", wait.Err())
		}
	})
}

// Close shuts down what New, Listen and Serve opened, in the reverse order
// of opening: the HTTP server first (in-flight requests finish, up to
// ctx), then the workers, the hosting controller, the ledger (drained)
// and the database last. Serve calls it on its way out; a caller that
// built a Server and never served defers it. Only the first call closes
// anything; later ones return its result.
func (s *Server) Close(ctx context.Context) error {
	return s.closers.run(ctx)
}
