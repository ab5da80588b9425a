package server_test

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// receiver is an OTLP/HTTP trace receiver on loopback: it decodes the
// protobuf export requests the exporter sends and keeps their spans.
type receiver struct {
	t     *testing.T
	url   string
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces with application/x-protobuf", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL
	return rc
}

// trace returns the spans of one trace, by hex trace id.
func (rc *receiver) trace(id string) []*tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range rc.spans {
		if hex.EncodeToString(s.TraceId) == id {
			out = append(out, s)
		}
	}
	return out
}

// attr is a span attribute's value, written as text.
func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key != key {
			continue
		}
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue
		case *commonpb.AnyValue_IntValue:
			return strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			return strconv.FormatBool(v.BoolValue)
		}
	}
	return ""
}

// tree indexes a trace's spans by id and finds children.
type tree struct {
	spans []*tracepb.Span
}

// one returns the only span named name, failing the test otherwise.
func (tr tree) named(t *testing.T, name string) []*tracepb.Span {
	var out []*tracepb.Span
	for _, s := range tr.spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func (tr tree) names() []string {
	var out []string
	for _, s := range tr.spans {
		out = append(out, s.Name)
	}
	return out
}

func childOf(s, parent *tracepb.Span) bool { return string(s.ParentSpanId) == string(parent.SpanId) }

const (
	clientTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientParent = "00f067aa0ba902b7"
)

// traceparent is a W3C traceparent a client sends, with trace id n.
func traceparent(n int) (header, traceID string) {
	id := clientTrace[:30] + fmt.Sprintf("%02x", n)
	return "00-" + id + "-" + clientParent + "-01", id
}

// Traces over OTLP/HTTP, read back from a receiver: a plain call, a
// stream, a failover and a guardrail block each give a server span that
// continues the client's trace, with children for routing, the
// guardrails and each upstream attempt; the upstream receives the trace.
func TestTracesOverOTLP(t *testing.T) {
	rc := newReceiver(t)
	fake := &fakeopenai.Server{Record: true, PromptTokens: 11, CompletionTokens: 7}
	j := start(t, fake, `  - {name: guarded, provider: openai, upstream_model: small-v1, guardrail: support}
routes:
  - {name: failover, deployments: [{model: dead-model}], fallbacks: [gpt-4o-mini]}
tracing: {endpoint: "`+rc.url+`", service_name: junction-test}
`+guardYAML)

	plainTP, plainID := traceparent(1)
	if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, hiBody("gpt-4o-mini"), "traceparent", plainTP); status != 200 {
		t.Fatalf("plain: %d %s", status, b)
	}
	streamTP, streamID := traceparent(2)
	if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "traceparent", streamTP); status != 200 {
		t.Fatalf("stream: %d %s", status, b)
	}
	failTP, failID := traceparent(3)
	if status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, hiBody("failover"), "traceparent", failTP); status != 200 || hdr.Get("X-Junction-Attempts") != "2" {
		t.Fatalf("failover: %d %v %s", status, hdr, b)
	}
	blockTP, blockID := traceparent(4)
	if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"guarded","messages":[{"role":"user","content":"tell me about project falcon"}]}`, "traceparent", blockTP); status != 200 || !strings.Contains(string(b), "can't take that request") {
		t.Fatalf("guardrail block: %d %s", status, b)
	}
	j.stop() // a graceful shutdown exports every span

	// The upstream continued each trace it saw.
	for _, r := range fake.Requests() {
		if tp := r.Header.Get("Traceparent"); !strings.HasPrefix(tp, "00-"+clientTrace[:30]) {
			t.Errorf("the upstream got traceparent %q", tp)
		}
	}

	check := func(name, id, pattern string) (tree, *tracepb.Span) {
		t.Helper()
		tr := tree{rc.trace(id)}
		servers := tr.named(t, pattern)
		if len(servers) != 1 {
			t.Fatalf("%s: %d server spans named %q; spans %v", name, len(servers), pattern, tr.names())
		}
		srv := servers[0]
		if hex.EncodeToString(srv.ParentSpanId) != clientParent || srv.Kind != tracepb.Span_SPAN_KIND_SERVER {
			t.Errorf("%s: the server span's parent is %x (kind %v), want the client's %s", name, srv.ParentSpanId, srv.Kind, clientParent)
		}
		if attr(srv, "junction.request_id") == "" || attr(srv, "http.response.status_code") != "200" {
			t.Errorf("%s: server span attributes %v", name, srv.Attributes)
		}
		return tr, srv
	}

	tr, srv := check("plain", plainID, "POST /v1/chat/completions")
	routes := tr.named(t, "route")
	attempts := tr.named(t, "chat gpt-4o-mini-2024-07-18")
	if len(routes) != 1 || !childOf(routes[0], srv) || len(attempts) != 1 || !childOf(attempts[0], srv) {
		t.Fatalf("plain: spans %v", tr.names())
	}
	a := attempts[0]
	if a.Kind != tracepb.Span_SPAN_KIND_CLIENT || attr(a, "gen_ai.system") != "openai" || attr(a, "junction.provider") != "openai" ||
		attr(a, "gen_ai.usage.input_tokens") != "11" || attr(a, "gen_ai.usage.output_tokens") != "7" || attr(srv, "junction.route") != "gpt-4o-mini" {
		t.Errorf("plain: attempt %v, server %v", a.Attributes, srv.Attributes)
	}

	tr, srv = check("stream", streamID, "POST /v1/chat/completions")
	attempts = tr.named(t, "chat gpt-4o-mini-2024-07-18")
	if len(attempts) != 1 || attr(attempts[0], "gen_ai.request.stream") != "true" || len(attempts[0].Events) == 0 || attempts[0].Events[0].Name != "gen_ai.first_token" {
		t.Errorf("stream: attempts %v", attempts)
	}

	tr, srv = check("failover", failID, "POST /v1/chat/completions")
	dead, live := tr.named(t, "chat dead-model"), tr.named(t, "chat gpt-4o-mini-2024-07-18")
	if len(dead) != 1 || dead[0].Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || len(live) != 1 || live[0].Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR ||
		!childOf(dead[0], srv) || !childOf(live[0], srv) || attr(srv, "junction.attempts") != "2" {
		t.Errorf("failover: dead %v, live %v, server %v", dead, live, srv.Attributes)
	}

	tr, srv = check("guardrail block", blockID, "POST /v1/chat/completions")
	guards := tr.named(t, "guardrail input")
	if len(guards) != 1 || attr(guards[0], "junction.guardrail.action") != "GUARDRAIL_INTERVENED" || !childOf(guards[0], srv) {
		t.Errorf("guardrail block: spans %v, guardrail %v", tr.names(), guards)
	}
	if n := len(tr.named(t, "chat small-v1")); n != 0 {
		t.Errorf("a blocked request reached the upstream: %d attempts", n)
	}
}
