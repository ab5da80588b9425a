package server

import (
	"context"
	"net/http"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/tracing"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// startTracing starts the OpenTelemetry tracer when the config or the
// OTEL_* environment names a collector; otherwise s.tracer stays nil and
// nothing is traced or wrapped.
func (s *Server) startTracing(ctx context.Context) error {
	opts := tracing.Options{Endpoint: s.cfg.Tracing.Endpoint, Headers: s.cfg.Tracing.Headers,
		ServiceName: s.cfg.Tracing.ServiceName, SampleRatio: s.cfg.Tracing.SampleRatio}
	if !tracing.Enabled(opts) {
		return nil
	}
	t, err := tracing.New(ctx, opts)
	if err != nil {
		return err
	}
	s.tracer = t
	s.closers.add("tracing", t.Shutdown)
	return nil
}

// traceProvider wraps an upstream so that each attempt on it is a span,
// when tracing is on.
func (s *Server) traceProvider(p config.Provider, up llm.Provider) llm.Provider {
	if s.tracer == nil {
		return up
	}
	system := p.Type
	if system == config.TypeBedrock {
		system = "aws.bedrock"
	}
	return tracing.Provider(system, p.Name, up)
}

// traced gives every request but the health checks and scrapes a server
// span, when tracing is on.
func (s *Server) traced(mux http.Handler) http.Handler {
	if s.tracer == nil {
		return mux
	}
	traced := s.tracer.Middleware(mux, func(w http.ResponseWriter, r *http.Request) (string, int) {
		status := 0
		if sw, ok := w.(*statusWriter); ok { // wrap's, around this handler
			status = sw.status
		}
		return api.InfoFrom(r.Context()).RequestID, status
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics", "/healthz", "/readyz":
			mux.ServeHTTP(w, r)
		default:
			traced.ServeHTTP(w, r)
		}
	})
}
