package modelserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/hosting/refmodel"
	"github.com/junctionhq/junction/internal/wire/jsonenc"
)

// maxBody is the largest request body accepted, SageMaker's InvokeEndpoint
// limit.
const maxBody = 6 << 20

// customAttributes is the SageMaker header carrying per-request fault
// knobs; it is echoed on every invocation response.
const customAttributes = "X-Amzn-SageMaker-Custom-Attributes"

// loaded is the model and what the handlers derive from it once.
type loaded struct {
	model *refmodel.Model
	// name is the served model id.
	name string
	// labels are the classifier's labels; quoted[i] is labels[i] as a
	// JSON string, quotes included.
	labels []string
	quoted [][]byte
}

// server holds the state shared by the handlers.
type server struct {
	cfg  config
	log  *slog.Logger
	exit func(code int)
	// state is nil until the model is loaded and the startup delay is
	// over; /ping answers 200 from then on.
	state atomic.Pointer[loaded]
	knobs knobs
	// invoked counts invocations that reached the fault gate, for the
	// crash-after knob and GET /stats; inFlight counts those running.
	invoked  atomic.Int64
	inFlight atomic.Int64
	started  time.Time
	// device serialises the call cost (batch.go); batches records the
	// batches served.
	device  sync.Mutex
	batches batchLog
	// models are a multi-model server's loaded models (multimodel.go).
	models modelSet
}

// newServer returns a server for cfg. exit ends the process; tests replace
// it to observe crashes.
func newServer(cfg config, log *slog.Logger, exit func(code int)) *server {
	s := &server{cfg: cfg, log: log, exit: exit, started: time.Now()}
	s.knobs.set(cfg.delay, cfg.failRate)
	return s
}

// handler routes requests for the server's mode.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", s.ping)
	mux.HandleFunc("GET /stats", s.stats)
	if s.cfg.faults {
		mux.HandleFunc("GET /faults", s.getFaults)
		mux.HandleFunc("POST /faults", s.postFaults)
	} else {
		mux.HandleFunc("/faults", faultsOff)
	}
	switch s.cfg.mode {
	case ModeOpenAI:
		mux.HandleFunc("GET /v1/models", s.listModels)
		mux.HandleFunc("GET /v1/models/{id}", s.getModel)
		mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	case ModeMultiModel:
		s.registerMultiModel(mux)
	default:
		mux.HandleFunc("POST /invocations", s.invocations)
		if s.cfg.execParams != nil {
			mux.HandleFunc("GET /execution-parameters", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write(s.cfg.execParams)
			})
		}
	}
	return mux
}

// serve answers on ln until ctx is done, then shuts down gracefully: it
// stops accepting, waits up to cfg.shutdownTimeout for requests in flight,
// then drops what is left. It returns an error only when the model cannot
// be loaded or the listener fails.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("model server listening", "addr", ln.Addr().String(), "mode", s.cfg.mode, "model_dir", s.cfg.modelDir)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	load := make(chan error, 1)
	go func() { load <- s.load(loadCtx) }()
	for {
		select {
		case err := <-load:
			if err != nil {
				srv.Close()
				return err
			}
			load = nil
		case err := <-served:
			return err
		case <-ctx.Done():
			s.log.Info("shutting down", "timeout", s.cfg.shutdownTimeout)
			sctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				s.log.Warn("requests still in flight at the shutdown timeout were dropped", "err", err)
				srv.Close()
			}
			s.log.Info("stopped")
			return nil
		}
	}
}

// load reads the artifact, waits out the startup delay and marks the
// server ready. A cancelled ctx ends the wait without error.
func (s *server) load(ctx context.Context) error {
	if s.cfg.mode == ModeMultiModel {
		// Models come through POST /models; the server is ready at once.
		s.state.Store(&loaded{name: "multi-model"})
		return nil
	}
	m, err := refmodel.Load(s.cfg.modelDir)
	if err != nil {
		return err
	}
	l := &loaded{model: m, name: m.Name(), labels: m.Labels()}
	if s.cfg.servedName != "" {
		l.name = s.cfg.servedName
	}
	for _, label := range l.labels {
		l.quoted = append(l.quoted, jsonenc.AppendString(nil, label))
	}
	s.log.Info("model loaded", "name", m.Name(), "version", m.Version(), "labels", m.NumLabels())
	if d := s.cfg.startupDelay; d > 0 {
		s.log.Info("holding /ping at 503", "reason", EnvStartupDelay, "delay", d)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
	s.state.Store(l)
	s.log.Info("ready")
	return nil
}

// ping is the health check: 200 with an empty body once the model is
// ready, 503 before, 500 while the ping_fail knob is on.
func (s *server) ping(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.knobs.pingFail.Load():
		http.Error(w, "unhealthy: ping_fail is set through POST /faults", http.StatusInternalServerError)
	case s.state.Load() == nil:
		http.Error(w, "model is loading", http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// stats answers GET /stats: whether the model is ready, how many
// invocations reached the server and how many are running, and the sizes
// of the batches it served, so that tests
// can tell what a backend saw.
func (s *server) stats(w http.ResponseWriter, _ *http.Request) {
	sizes, batches := s.batches.snapshot()
	models, loads, unloads := s.modelStats()
	writeJSON(w, struct {
		Ready       bool  `json:"ready"`
		Invocations int64 `json:"invocations"`
		InFlight    int64 `json:"in_flight"`
		// Batches counts batch calls; BatchSizes are the last 4096
		// batches' sizes, oldest first.
		Batches    int64 `json:"batches"`
		BatchSizes []int `json:"batch_sizes"`
		// Models, ModelLoads and ModelUnloads count a multi-model
		// server's loaded models and its loads and unloads since start.
		Models       int   `json:"models"`
		ModelLoads   int64 `json:"model_loads"`
		ModelUnloads int64 `json:"model_unloads"`
	}{s.state.Load() != nil, s.invoked.Load(), s.inFlight.Load(), batches, sizes, models, loads, unloads})
}

// failFunc answers a failed request in the shape of one API surface.
type failFunc func(w http.ResponseWriter, status int, msg string)

// plainError answers with msg as text, as the BYOC surface does.
func plainError(w http.ResponseWriter, status int, msg string) {
	http.Error(w, msg, status)
}

// track counts an invocation as in flight until the returned func runs.
func (s *server) track() func() {
	s.inFlight.Add(1)
	return func() { s.inFlight.Add(-1) }
}

// admit runs the gate every invocation passes, after its body has been
// read with readErr as the outcome: body errors, readiness, then the
// fault knobs in order — crash after N, the request's own knobs (crash,
// delay, hang, status, error; only with cfg.faults), and the random fail
// rate. It returns the
// model to answer with, or nil when the request has been answered already
// (or never will be). Reading the body first matters: net/http notices a
// client that gives up, and cancels the request context, only once the
// body is consumed, and a delayed or hung request must end then.
func (s *server) admit(w http.ResponseWriter, r *http.Request, readErr error, fail failFunc) *loaded {
	if v := r.Header.Get(customAttributes); v != "" {
		w.Header().Set(customAttributes, v)
	}
	if errors.Is(readErr, errTooLarge) {
		fail(w, http.StatusRequestEntityTooLarge, readErr.Error())
		return nil
	}
	if readErr != nil {
		fail(w, http.StatusBadRequest, "cannot read the request body: "+readErr.Error())
		return nil
	}
	l := s.state.Load()
	if l == nil {
		fail(w, http.StatusServiceUnavailable, errNotReady.Error())
		return nil
	}
	if n := s.invoked.Add(1); s.cfg.crashAfter > 0 && n == s.cfg.crashAfter {
		s.crash(EnvCrashAfter)
		return nil
	}
	var a attributes
	if s.cfg.faults {
		var err error
		if a, err = parseAttributes(r.Header.Get(customAttributes)); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return nil
		}
	}
	if a.fault == faultCrash {
		s.crash("fault=crash")
		return nil
	}
	if d := s.knobs.delay() + a.delay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return nil
		}
	}
	switch {
	case a.fault == faultHang:
		<-r.Context().Done()
		return nil
	case a.status != 0:
		fail(w, a.status, injectedStatusMessage(a.status))
		return nil
	case a.fault == faultError:
		fail(w, http.StatusInternalServerError, "injected error: fault=error in "+customAttributes)
		return nil
	case s.knobs.shouldFail():
		fail(w, http.StatusInternalServerError, "injected error: fail_rate")
		return nil
	}
	return l
}

// crash ends the process at once, without answering. exit does not
// return in production; when a test's exit does, the connection is
// dropped all the same.
func (s *server) crash(reason string) {
	s.log.Warn("crashing on purpose", "reason", reason, "code", CrashExitCode)
	s.exit(CrashExitCode)
	panic(http.ErrAbortHandler)
}

// errNotReady is returned by handlers that need the model before it has
// loaded.
var errNotReady = errors.New("the model is still loading; retry when GET /ping answers 200")
