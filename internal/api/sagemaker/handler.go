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
// runtime's headers, hands a hosting.Invocation to the gateway — which
// admits it, has the hosting controller pick the variant and the instance
// and call the model server, and records it once, as it does every call —
// and writes the answer: the body and headers as SageMaker passes them
// through, failures in the error shapes the SDKs decode into their typed
// errors, and a streamed answer as AWS event-stream messages.
// InvokeEndpointAsync (AsyncHandler) queues the request in package async
// and answers 202 with where its result will land.
//
// Multi-model targets (X-Amzn-SageMaker-Target-Model),
// multi-container targets, inference components, stateful sessions and
// Clarify explanations are not served; a request that asks for one is
// refused with a ValidationError rather than served as if it had not.
package sagemaker

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Surface is this surface's name in the ledger.
const Surface = "sagemaker"

// SigningName is the service name AWS SDKs sign SageMaker runtime
// requests for.
const SigningName = "sagemaker"

// Provider is the ledger's provider for an invocation: a model endpoint
// Junction hosts.
const Provider = gateway.HostedProvider

// Defaults SageMaker itself applies.
const (
	// DefaultMaxBodyBytes is InvokeEndpoint's payload limit, 6 MB.
	DefaultMaxBodyBytes = 6_291_456
	// DefaultTimeout is how long a container has to answer an
	// invocation: hosting's, which waits as long for a draining
	// instance's calls.
	DefaultTimeout = hosting.DefaultInvocationTimeout
)

// Handler serves the SageMaker runtime surface.
type Handler struct {
	// Gateway runs each invocation through the call lifecycle: its
	// admission under the rate limits (requests; an invocation has no
	// tokens, and costs nothing per call, so budgets never refuse it),
	// the hosting controller (its Endpoints), its one ledger record and
	// its metrics.
	Gateway *gateway.Gateway
	// Auth admits requests; its Verifier's service is SigningName. Nil
	// admits every request unauthenticated, for tests of the wire only.
	Auth *api.AWSAuth
	// MaxBodyBytes limits a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Timeout bounds each wait on the model server: for its answer, for
	// a stream to begin, and for each next part of a stream once it has.
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// Log receives failures that are Junction's own; nil is
	// slog.Default().
	Log *slog.Logger
}

// Register adds the surface's routes to mux. Authentication is the
// handler's own, since a signature covers the body.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /endpoints/{EndpointName}/invocations", h.admit(false, h.invoke))
	mux.Handle("POST /endpoints/{EndpointName}/invocations-response-stream", h.admit(true, h.invokeStream))
	mux.HandleFunc("/endpoints/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, wireError{status: http.StatusNotFound, code: CodeUnknownOperation, body: errorBody{
			Message: r.Method + " " + r.URL.Path + " is not a SageMaker runtime operation Junction serves; it serves InvokeEndpoint, InvokeEndpointWithResponseStream and InvokeEndpointAsync",
		}})
	})
}

// call is one invocation on its way through the handler: the gateway's
// call, which it ends exactly once, and what the wire needs.
type call struct {
	*gateway.Call
	inv hosting.Invocation
}

// admit reads the body, authenticates the request with it and checks
// its headers, then serves it with next. A failure before authentication
// (a body too large, a bad signature) belongs to no key and is answered
// without a ledger record, as on the Bedrock surface; from then on the
// call is begun, and ended exactly once (the deferred End records one
// that no path ended).
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
		c := &call{Call: &gateway.Call{Surface: Surface, RequestID: info.RequestID, Key: info.Key, Tags: info.Tags,
			Start: info.Start, Stream: stream, Hosted: true}}
		defer h.Gateway.End(c.Call)
		inv, he := parseInvocation(r, stream)
		c.inv = inv
		c.Model = inv.Endpoint
		if he == nil && len(body) == 0 {
			he = hosting.Validation("Body: an invocation needs a body, which the model server receives as it is")
		}
		if he != nil {
			h.Gateway.Finish(c.Call, llm.Usage{}, nil, he)
			writeError(w, r, fromHosting(he))
			return
		}
		c.inv.Body = body
		c.inv.Timeout = h.timeout()
		next(w, r, c)
	})
}

// refused answers an invocation governance turned away: 429
// ThrottlingException for a rate limit (with Retry-After), 503 when the
// shared counters cannot be reached.
func (h *Handler) refused(w http.ResponseWriter, r *http.Request, e *llm.Error) {
	code, status := CodeThrottling, http.StatusTooManyRequests
	if e.Status == http.StatusServiceUnavailable {
		code, status = hosting.ErrServiceUnavailable, http.StatusServiceUnavailable
	}
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	writeError(w, r, wireError{status: status, code: code, body: errorBody{Message: e.Message}})
}

// CodeThrottling is AWS's error code for a request refused by a rate
// limit.
const CodeThrottling = gateway.CodeThrottling

// invoke serves InvokeEndpoint.
func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, c *call) {
	res, err := h.Gateway.Invoke(r.Context(), c.Call, &c.inv)
	c.LimitHeaders(w.Header())
	if err != nil {
		h.failed(w, r, c, err)
		return
	}
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

// failed answers an invocation that failed before its answer began, as
// the gateway ended it: in the runtime's shape when err is a
// *hosting.Error (a timeout is one), as a throttle when a rate limit
// refused it, and as an InternalFailure otherwise. A client that hung up
// gets nothing.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, c *call, err error) {
	if r.Context().Err() != nil {
		return
	}
	if he, ok := asHosting(err); ok {
		writeError(w, r, fromHosting(he))
		return
	}
	var le *llm.Error
	if errors.As(err, &le) && (le.Status == http.StatusTooManyRequests || le.Status == http.StatusServiceUnavailable) {
		h.refused(w, r, le)
		return
	}
	h.log().LogAttrs(r.Context(), slog.LevelError, "sagemaker: invocation failed", slog.String("request_id", c.RequestID),
		slog.String("endpoint", c.inv.Endpoint), slog.String("inference_id", c.inv.InferenceID), slog.Any("err", err))
	writeError(w, r, fromHosting(internalFailure(c.inv.Endpoint, c.RequestID)))
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
