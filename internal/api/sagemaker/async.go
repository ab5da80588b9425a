package sagemaker

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/jobs/async"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// InvokeEndpointAsync's own headers, as the service model names them.
const (
	headerInputLocation      = "X-Amzn-SageMaker-InputLocation"
	headerOutputLocation     = "X-Amzn-SageMaker-OutputLocation"
	headerFailureLocation    = "X-Amzn-SageMaker-FailureLocation"
	headerRequestTTL         = "X-Amzn-SageMaker-RequestTTLSeconds"
	headerInvocationTimeout  = "X-Amzn-SageMaker-InvocationTimeoutSeconds"
	headerOutputPathExtended = "X-Amzn-SageMaker-S3OutputPathExtension"
	headerFilename           = "X-Amzn-SageMaker-Filename"
)

// AsyncQueue queues async invocations; *async.Queue implements it.
type AsyncQueue interface {
	Enqueue(ctx context.Context, r *async.Request) (*async.Accepted, error)
}

// AsyncHandler serves InvokeEndpointAsync (POST
// /endpoints/{EndpointName}/async-invocations): it authenticates the
// request as the other operations do, checks its headers against the
// service model, queues it and answers 202 with the InferenceId and where
// the output or the failure will land. The queue does the rest.
type AsyncHandler struct {
	Queue AsyncQueue
	// Auth admits requests (SigV4 or a bearer key); nil admits every
	// request, for tests of the wire only.
	Auth *api.AWSAuth
	// Log receives failures that are Junction's own; nil is
	// slog.Default().
	Log *slog.Logger
}

// Register adds the operation's route to mux.
func (h *AsyncHandler) Register(mux *http.ServeMux) {
	mux.Handle("POST /endpoints/{EndpointName}/async-invocations", h)
}

// ServeHTTP queues one invocation.
func (h *AsyncHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	read := api.ReadBody
	if h.Auth != nil {
		read = h.Auth.ReadBody
	}
	body, e := read(w, r, async.MaxInlineBody)
	if e != nil {
		if e.Type == llm.ErrTooLarge {
			e = llm.BadRequest("Body", "an inline async input may be at most %d bytes; put a larger one in S3 and send its %s instead",
				async.MaxInlineBody, headerInputLocation)
		}
		writeError(w, r, fromAPI(e))
		return
	}
	req, he := parseAsync(r, body)
	if he != nil {
		writeError(w, r, fromHosting(he))
		return
	}
	if k := api.InfoFrom(r.Context()).Key; k != nil {
		req.KeyID = k.ID
	}
	acc, err := h.Queue.Enqueue(r.Context(), req)
	if err != nil {
		if he, ok := asHosting(err); ok {
			writeError(w, r, fromHosting(he))
			return
		}
		info := api.InfoFrom(r.Context())
		h.log().LogAttrs(r.Context(), slog.LevelError, "sagemaker: async invocation not queued", slog.String("request_id", info.RequestID),
			slog.String("endpoint", req.Endpoint), slog.Any("err", err))
		writeError(w, r, fromHosting(&hosting.Error{Status: http.StatusInternalServerError, Code: hosting.ErrInternalFailure,
			Message: "the request could not be queued (request id " + info.RequestID + ")"}))
		return
	}
	setRequestID(w, r)
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set(headerOutputLocation, acc.Output)
	hdr.Set(headerFailureLocation, acc.Failure)
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(struct {
		InferenceID string `json:"InferenceId"`
	}{acc.InferenceID})
}

// parseAsync reads an InvokeEndpointAsync request's headers, checking
// each against the service model's bounds.
func parseAsync(r *http.Request, body []byte) (*async.Request, *hosting.Error) {
	inv, he := parseInvocation(r, false)
	if he != nil {
		return nil, he
	}
	if inv.TargetVariant != "" {
		return nil, hosting.Validation("%s: InvokeEndpointAsync has no target variant; send the request without it", headerTargetVariant)
	}
	req := &async.Request{Endpoint: inv.Endpoint, Input: r.Header.Get(headerInputLocation), Body: body,
		ContentType: r.Header.Get(headerStreamContentType), Accept: r.Header.Get(headerStreamAccept),
		CustomAttributes: inv.CustomAttributes, InferenceID: inv.InferenceID,
		OutputPathExtension: r.Header.Get(headerOutputPathExtended), Filename: r.Header.Get(headerFilename)}
	if req.Input != "" && len(body) > 0 {
		return nil, hosting.Validation("Body and %s are mutually exclusive; send exactly one of them", headerInputLocation)
	}
	if len(req.Input) > 1024 {
		return nil, hosting.Validation("%s must be at most 1024 characters", headerInputLocation)
	}
	var err *hosting.Error
	if req.TTL, err = seconds(r, headerRequestTTL, async.MinTTL, async.MaxTTL); err != nil {
		return nil, err
	}
	if req.InvocationTimeout, err = seconds(r, headerInvocationTimeout, time.Second, async.MaxInvocationTimeout); err != nil {
		return nil, err
	}
	return req, nil
}

// seconds reads a header holding a whole number of seconds within
// [lo, hi]; absent is zero.
func seconds(r *http.Request, name string, lo, hi time.Duration) (time.Duration, *hosting.Error) {
	v := r.Header.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	d := time.Duration(n) * time.Second
	if err != nil || d < lo || d > hi {
		return 0, hosting.Validation("%s: %q must be a whole number of seconds from %d to %d", name, v, int(lo.Seconds()), int(hi.Seconds()))
	}
	return d, nil
}

func (h *AsyncHandler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
