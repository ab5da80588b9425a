// Package sagemaker is the inbound Amazon SageMaker runtime surface:
// InvokeEndpoint (POST /endpoints/{EndpointName}/invocations) and
// InvokeEndpointWithResponseStream (POST
// /endpoints/{EndpointName}/invocations-response-stream), so that an
// application written against an AWS SDK's SageMaker runtime client calls
// the model endpoints Junction hosts with only its endpoint URL and
// credentials changed.
//
// It is the wire and nothing more: it authenticates the request (SigV4
// for the signing name "sagemaker", through api.AWSAuth), checks the
// runtime's headers, hands a hosting.Invocation to an Invoker — the
// hosting controller, which picks the variant and the instance and calls
// the model server — and writes the answer: the body and headers as
// SageMaker passes them through, failures in the error shapes the SDKs
// decode into their typed errors, and a streamed answer as AWS
// event-stream messages. It records one ledger entry per invocation.
//
// InvokeEndpointAsync, multi-model targets (X-Amzn-SageMaker-Target-Model),
// multi-container targets, inference components, stateful sessions and
// Clarify explanations are not served; a request that asks for one is
// refused with a ValidationError rather than served as if it had not.
package sagemaker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/llm"
	"github.com/junctionhq/junction/internal/metrics"
)

// Surface is this surface's name in the ledger.
const Surface = "sagemaker"

// SigningName is the service name AWS SDKs sign SageMaker runtime
// requests for.
const SigningName = "sagemaker"

// Provider is the ledger's provider for an invocation: a model endpoint
// Junction hosts.
const Provider = "endpoint"

// Defaults SageMaker itself applies.
const (
	// DefaultMaxBodyBytes is InvokeEndpoint's payload limit, 6 MB.
	DefaultMaxBodyBytes = 6_291_456
	// DefaultTimeout is how long a container has to answer an
	// invocation.
	DefaultTimeout = 60 * time.Second
)

// Invoker serves invocations; the hosting controller implements it.
//
// Invoke returns the model server's answer, or an error: a
// *hosting.Error is written in the runtime's error shape, any other error
// as an InternalFailure. ctx ends when the client hangs up or the
// invocation times out; Invoke must return then.
//
// InvokeStream returns once the model server has begun to answer; its
// Body is read until it ends and then closed. A read that fails with a
// *hosting.Error whose code is InternalFailure or ServiceUnavailable ends
// the stream with an InternalStreamFailure event, any other failure with a
// ModelStreamError. The Body must stop blocking, returning an error from
// Read, when ctx ends or when Close is called, which may happen while a
// Read waits.
type Invoker interface {
	Invoke(ctx context.Context, inv *hosting.Invocation) (*hosting.Result, error)
	InvokeStream(ctx context.Context, inv *hosting.Invocation) (*hosting.StreamResult, error)
}

// Handler serves the SageMaker runtime surface.
type Handler struct {
	Invoker Invoker
	// Auth admits requests; its Verifier's service is SigningName. Nil
	// admits every request unauthenticated, for tests of the wire only.
	Auth *api.AWSAuth
	// Ledger receives one record per invocation; nil records nothing.
	Ledger *ledger.Writer
	// MaxBodyBytes limits a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Timeout bounds each wait on the model server: for its answer, for
	// a stream to begin, and for each next part of a stream once it has.
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// Log receives failures that are Junction's own; nil is
	// slog.Default().
	Log *slog.Logger
	// Governance, when set, applies the rate limits (requests; an
	// invocation has no tokens) and budgets whose scope matches the
	// caller and the endpoint (model:ENDPOINT). Invocations cost nothing
	// per call, so budgets never refuse them.
	Governance *governance.Governor
	// Metrics, when set, counts every recorded invocation.
	Metrics *metrics.Metrics
}

// Register adds the surface's routes to mux. Authentication is the
// handler's own, since a signature covers the body.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /endpoints/{EndpointName}/invocations", h.admit(false, h.invoke))
	mux.Handle("POST /endpoints/{EndpointName}/invocations-response-stream", h.admit(true, h.invokeStream))
	mux.HandleFunc("/endpoints/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, wireError{status: http.StatusNotFound, code: CodeUnknownOperation, body: errorBody{
			Message: r.Method + " " + r.URL.Path + " is not a SageMaker runtime operation Junction serves; it serves InvokeEndpoint and InvokeEndpointWithResponseStream",
		}})
	})
}

// call is one invocation on its way through the handler, with what its
// ledger record needs.
type call struct {
	inv    hosting.Invocation
	info   *api.Info
	stream bool
	// variant is the variant that served or failed the call.
	variant string
	status  int
	code    string
	ttft    time.Duration
	// model is the time the model server took to answer; zero when none
	// answered.
	model time.Duration
}

// admit reads the body, authenticates the request with it and checks
// its headers, then serves it with next. A failure before authentication
// (a body too large, a bad signature) belongs to no key and is answered
// without a ledger record, as on the Bedrock surface; from then on every
// outcome is recorded.
func (h *Handler) admit(stream bool, next func(w http.ResponseWriter, r *http.Request, c *call)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := h.maxBodyBytes()
		read := api.ReadBody
		if h.Auth != nil {
			read = h.Auth.ReadBody
		}
		body, e := read(w, r, limit)
		if e != nil {
			if e.Type == llm.ErrTooLarge {
				e = llm.BadRequest("Body", "the request body is larger than the %d-byte limit of the SageMaker runtime's invocations", limit)
			}
			writeError(w, r, fromAPI(e))
			return
		}
		info := api.InfoFrom(r.Context())
		if info.Start.IsZero() {
			info.Start = time.Now()
		}
		c := &call{info: info, stream: stream, status: http.StatusOK}
		defer h.record(c)
		inv, he := parseInvocation(r, stream)
		c.inv = inv
		if he == nil && len(body) == 0 {
			he = hosting.Validation("Body: an invocation needs a body, which the model server receives as it is")
		}
		if he != nil {
			h.writeError(w, r, c, he)
			return
		}
		c.inv.Body = body
		if h.Governance != nil && info.Key != nil {
			k := info.Key
			a, err := h.Governance.Admit(r.Context(), &governance.Request{
				Subject: governance.Subject{Key: k.ID, Team: k.Tags["team"], Project: k.Tags["project"], Model: c.inv.Endpoint, Tags: info.Tags},
				KeyRPM:  k.RPM, KeyTPM: k.TPM, MaxOutput: -1,
			})
			a.SetHeaders(w.Header())
			if err != nil {
				h.refused(w, r, c, err)
				return
			}
			defer a.Done()
		}
		next(w, r, c)
	})
}

// refused answers an invocation governance turned away: 429
// ThrottlingException for a rate limit (with Retry-After), 503 when the
// shared counters cannot be reached.
func (h *Handler) refused(w http.ResponseWriter, r *http.Request, c *call, err error) {
	e := llm.AsError(err)
	code, status := CodeThrottling, http.StatusTooManyRequests
	if e.Status == http.StatusServiceUnavailable {
		code, status = hosting.ErrServiceUnavailable, http.StatusServiceUnavailable
	}
	c.status, c.code = status, code
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	writeError(w, r, wireError{status: status, code: code, body: errorBody{Message: e.Message}})
}

// CodeThrottling is AWS's error code for a request refused by a rate
// limit.
const CodeThrottling = "ThrottlingException"

// invoke serves InvokeEndpoint.
func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, c *call) {
	ctx, cancel := context.WithTimeoutCause(r.Context(), h.timeout(), errTimeout)
	defer cancel()
	res, err := h.Invoker.Invoke(ctx, &c.inv)
	if err == nil && res == nil {
		err = errors.New("the invoker returned neither a result nor an error")
	}
	if err != nil {
		h.failed(ctx, w, r, c, err)
		return
	}
	c.variant, c.model = res.Variant, res.ModelLatency
	hdr := w.Header()
	setRequestID(w, r)
	if res.ContentType != "" {
		hdr.Set("Content-Type", res.ContentType)
	} else {
		hdr["Content-Type"] = nil // SageMaker sends none; net/http must not sniff one
	}
	setHeader(hdr, headerInvokedVariant, res.Variant)
	setHeader(hdr, headerCustomAttributes, res.CustomAttributes)
	hdr.Set("Content-Length", strconv.Itoa(len(res.Body)))
	w.WriteHeader(http.StatusOK)
	w.Write(res.Body)
}

// errTimeout is the cause of an invocation's context that timed out.
var errTimeout = errors.New("sagemaker: invocation timed out")

// failed answers an invocation that failed before its answer began: as a
// timeout when the deadline passed, in the runtime's shape when err is a
// *hosting.Error, and as an InternalFailure otherwise. A client that hung
// up gets nothing.
func (h *Handler) failed(ctx context.Context, w http.ResponseWriter, r *http.Request, c *call, err error) {
	if r.Context().Err() != nil {
		c.status, c.code = gateway.StatusClientClosed, "client_closed"
		return
	}
	he, ok := asHosting(err)
	switch {
	case errors.Is(context.Cause(ctx), errTimeout):
		variant := c.inv.TargetVariant
		if ok && he.Variant != "" {
			variant = he.Variant
		}
		if variant == "" {
			variant = c.inv.Endpoint
		}
		he = timedOut(variant, h.timeout())
	case !ok:
		h.log().LogAttrs(r.Context(), slog.LevelError, "sagemaker: invocation failed", slog.String("request_id", c.info.RequestID),
			slog.String("endpoint", c.inv.Endpoint), slog.String("inference_id", c.inv.InferenceID), slog.Any("err", err))
		he = internalFailure(c.inv.Endpoint, c.info.RequestID)
	}
	h.writeError(w, r, c, he)
}

// writeError answers with he and notes it for the ledger.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, c *call, he *hosting.Error) {
	we := fromHosting(he)
	c.status, c.code = we.status, we.code
	if he.Variant != "" {
		c.variant = he.Variant
	}
	writeError(w, r, we)
}

// record writes the call's ledger record. Hosting is paid per instance
// hour, not per call, so an invocation's cost is a known zero.
func (h *Handler) record(c *call) {
	if h.Metrics != nil {
		h.Metrics.Invocation(c.inv.Endpoint, c.variant, c.status, time.Since(c.info.Start), c.model)
	}
	if h.Ledger == nil {
		return
	}
	cost := 0.0
	rec := ledger.Record{
		Time: c.info.Start, RequestID: c.info.RequestID, Tags: c.info.Tags,
		Surface: Surface, Model: c.inv.Endpoint, Provider: Provider, Deployment: c.variant, Stream: c.stream,
		Status: c.status, ErrorType: c.code, LatencyMS: float64(time.Since(c.info.Start).Microseconds()) / 1000,
		CostUSD: &cost,
	}
	if k := c.info.Key; k != nil {
		rec.KeyID, rec.KeyName = k.ID, k.Name
	}
	if c.ttft > 0 {
		ms := float64(c.ttft.Microseconds()) / 1000
		rec.TTFTMS = &ms
	}
	h.Ledger.Add(rec)
}

func (h *Handler) maxBodyBytes() int64 {
	if h.MaxBodyBytes > 0 {
		return h.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

func (h *Handler) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return DefaultTimeout
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// setHeader sets a response header the model server gave a value for.
func setHeader(h http.Header, name, value string) {
	if value != "" {
		h.Set(name, value)
	}
}
