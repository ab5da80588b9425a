// Package tracing exports OpenTelemetry traces of Junction's requests over
// OTLP/HTTP: a server span per request, with child spans for the input
// and output guardrails, prompt routing and each upstream attempt, and the
// W3C traceparent carried in from clients and out to upstreams and model
// servers.
//
// Tracing is off unless configured. Off, nothing is wrapped and no span
// is made: the helpers that gateway code calls find no span in the
// context and return at once, without allocating.
package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Options configure the exporter. Empty fields fall back to the standard
// OTEL_* environment variables the OTLP exporter reads
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME, ...).
type Options struct {
	// Endpoint is the collector's OTLP/HTTP base URL
	// (http://127.0.0.1:4318); spans go to Endpoint + /v1/traces.
	Endpoint string
	// Headers are sent with every export (an API key, say).
	Headers map[string]string
	// ServiceName names this process in traces; default "junction".
	ServiceName string
	// SampleRatio is the share of new traces recorded (0 to 1); 0 means
	// all. A request that arrives with a sampled traceparent is recorded
	// whatever the ratio.
	SampleRatio float64
}

// Enabled reports whether opts or the environment ask for traces: an
// endpoint in either, and OTEL_SDK_DISABLED not "true".
func Enabled(opts Options) bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	return opts.Endpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Tracer makes and exports spans.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

// propagator reads and writes W3C traceparent and tracestate.
var propagator = propagation.TraceContext{}

// instrumentation names the spans' instrumentation scope.
const instrumentation = "github.com/junctionhq/junction"

// New starts a tracer that batches spans and exports them over
// OTLP/HTTP. It does not contact the collector: export failures are
// reported by the OpenTelemetry SDK's error handler, never to clients.
func New(ctx context.Context, opts Options) (*Tracer, error) {
	var eopts []otlptracehttp.Option
	if opts.Endpoint != "" { // checked by the config: an http(s) URL
		eopts = append(eopts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(opts.Endpoint, "/")+"/v1/traces"))
	}
	if len(opts.Headers) > 0 {
		eopts = append(eopts, otlptracehttp.WithHeaders(opts.Headers))
	}
	exp, err := otlptracehttp.New(ctx, eopts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	name := opts.ServiceName
	if name == "" {
		name = os.Getenv("OTEL_SERVICE_NAME")
	}
	if name == "" {
		name = "junction"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", name)))
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	sampler := sdktrace.ParentBased(sdktrace.AlwaysSample())
	if opts.SampleRatio > 0 && opts.SampleRatio < 1 {
		sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(opts.SampleRatio))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	return &Tracer{provider: tp, tracer: tp.Tracer(instrumentation)}, nil
}

// Shutdown exports the spans still queued and stops the tracer. A nil
// Tracer does nothing.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// Start starts a child span of the span ctx carries, when that span is
// recording; otherwise it returns ctx and a span that does nothing, at
// the cost of one context lookup.
func Start(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent // a span that does nothing, already an interface: no allocation
	}
	return parent.TracerProvider().Tracer(instrumentation).Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
}

// End ends span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Guarded ends a guardrail's span with what it did (NONE or
// GUARDRAIL_INTERVENED) or how it failed.
func Guarded(span trace.Span, action string, err error) {
	if span.IsRecording() && action != "" {
		span.SetAttributes(attribute.String("junction.guardrail.action", action))
	}
	End(span, err)
}
