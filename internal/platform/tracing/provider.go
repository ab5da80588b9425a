package tracing

import (
	"context"
	"errors"
	"io"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// Provider wraps an upstream so that each call to it, an upstream attempt
// of the gateway, is a client span with the GenAI semantic conventions'
// attributes: the provider (gen_ai.system, and junction.provider its
// name in the config), the model asked of it, the
// model that answered and the tokens. A stream's span lasts until the
// stream ends or is closed and marks its first token with an event. Embedding
// upstreams keep their embeddings API.
//
// Only a tracer's server wraps its providers, so with tracing off the
// gateway calls them directly.
func Provider(system, name string, p llm.Provider) llm.Provider {
	tp := tracedProvider{system: system, name: name, p: p}
	if e, ok := p.(llm.Embedder); ok {
		return tracedEmbedder{tp, e}
	}
	return tp
}

type tracedProvider struct {
	// system is the provider's kind (openai, anthropic, aws.bedrock) and
	// name its name in the config.
	system, name string
	p            llm.Provider
}

type tracedEmbedder struct {
	tracedProvider
	e llm.Embedder
}

func (t tracedEmbedder) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	ctx, span := t.start(ctx, "embeddings", req.Model)
	resp, err := t.e.Embed(ctx, req)
	End(span, err)
	return resp, err
}

// start begins an attempt's span, a child of the request's.
func (t tracedProvider) start(ctx context.Context, op, model string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent // a span that does nothing, already an interface: no allocation
	}
	return parent.TracerProvider().Tracer(instrumentation).Start(ctx, op+" "+model, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("gen_ai.operation.name", op), attribute.String("gen_ai.system", t.system),
			attribute.String("junction.provider", t.name),
			attribute.String("gen_ai.request.model", model)))
}

func (t tracedProvider) Chat(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	ctx, span := t.start(ctx, "chat", req.Model)
	resp, err := t.p.Chat(ctx, req)
	if err == nil && resp != nil && span.IsRecording() {
		span.SetAttributes(attribute.String("gen_ai.response.model", resp.Model), attribute.String("gen_ai.response.id", resp.ID),
			attribute.Int("gen_ai.usage.input_tokens", resp.Usage.InputTokens),
			attribute.Int("gen_ai.usage.output_tokens", resp.Usage.OutputTokens),
			attribute.StringSlice("gen_ai.response.finish_reasons", []string{string(resp.StopReason)}))
	}
	End(span, err)
	return resp, err
}

func (t tracedProvider) ChatStream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	ctx, span := t.start(ctx, "chat", req.Model)
	s, err := t.p.ChatStream(ctx, req)
	if err != nil || !span.IsRecording() {
		End(span, err)
		return s, err
	}
	span.SetAttributes(attribute.Bool("gen_ai.request.stream", true))
	ts := &tracedStream{s: s, span: span}
	if _, ok := s.(interface{ Pending() bool }); ok {
		return pendingStream{ts}, nil
	}
	return ts, nil
}

// tracedStream ends its span when the stream ends, fails or is closed.
type tracedStream struct {
	s     llm.Stream
	span  trace.Span
	first bool
	usage llm.Usage
	once  sync.Once
}

func (s *tracedStream) Recv() (llm.Event, error) {
	ev, err := s.s.Recv()
	switch {
	case err == nil:
		if !s.first && (ev.Text != "" || ev.ToolCall != nil) {
			s.first = true
			s.span.AddEvent("gen_ai.first_token")
		}
		if ev.Usage != nil {
			s.usage = *ev.Usage
		}
		if ev.Model != "" {
			s.span.SetAttributes(attribute.String("gen_ai.response.model", ev.Model))
		}
	case errors.Is(err, io.EOF):
		s.finish(nil)
	default:
		s.finish(err)
	}
	return ev, err
}

func (s *tracedStream) Close() error {
	err := s.s.Close()
	s.finish(nil)
	return err
}

// finish ends the span, once: when the stream ends, fails or is closed.
func (s *tracedStream) finish(err error) {
	s.once.Do(func() {
		s.span.SetAttributes(attribute.Int("gen_ai.usage.input_tokens", s.usage.InputTokens),
			attribute.Int("gen_ai.usage.output_tokens", s.usage.OutputTokens))
		End(s.span, err)
	})
}

// pendingStream keeps the upstream stream's Pending, which lets a surface
// write events that arrived together in one flush.
type pendingStream struct{ *tracedStream }

func (p pendingStream) Pending() bool { return p.s.(interface{ Pending() bool }).Pending() }
