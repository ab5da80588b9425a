package tracing

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Middleware makes a server span for every request to next, continuing
// the trace of a W3C traceparent the client sent. The span is named by
// the route pattern that served the request (POST /v1/chat/completions),
// never by the raw path, and notes how the gateway routed the call from
// the X-Junction-* headers of the answer. done tells, once next has
// answered, the request's id (to find its log line and ledger record from
// the trace) and the status written, which the server's own response
// writer keeps.
func (t *Tracer) Middleware(next http.Handler, done func(w http.ResponseWriter, r *http.Request) (requestID string, status int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
		defer span.End()
		r = r.WithContext(ctx)
		next.ServeHTTP(w, r)
		if r.Pattern != "" {
			span.SetName(r.Pattern)
			span.SetAttributes(attribute.String("http.route", r.Pattern))
		}
		id, status := done(w, r)
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if id != "" {
			span.SetAttributes(attribute.String("junction.request_id", id))
		}
		h := w.Header()
		for _, a := range routeHeaders {
			if v := h.Get(a.header); v != "" {
				span.SetAttributes(attribute.String(a.attr, v))
			}
		}
		if v, err := strconv.Atoi(h.Get("X-Junction-Attempts")); err == nil {
			span.SetAttributes(attribute.Int("junction.attempts", v))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	})
}

// routeHeaders are the answer's routing headers and their span
// attributes.
var routeHeaders = []struct{ header, attr string }{
	{"X-Junction-Requested-Model", "gen_ai.request.model"},
	{"X-Junction-Served-Model", "gen_ai.response.model"},
	{"X-Junction-Route", "junction.route"},
	{"X-Junction-Deployment", "junction.deployment"},
	{"X-Junction-Route-Reason", "junction.route_reason"},
	{"X-Junction-Guardrail-Action", "junction.guardrail_action"},
}

// Transport injects the traceparent of each request's span into the
// request before rt sends it: upstreams and model servers continue the
// trace. Without a span it adds nothing but a context lookup.
func Transport(rt http.RoundTripper) http.RoundTripper { return transport{rt} }

type transport struct{ rt http.RoundTripper }

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
		// A RoundTripper must not change the caller's request.
		r = r.Clone(r.Context())
		propagator.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	}
	return t.rt.RoundTrip(r)
}

// CloseIdleConnections closes the wrapped transport's idle connections,
// as http.Client.CloseIdleConnections asks.
func (t transport) CloseIdleConnections() {
	if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
