package sagemaker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// StreamContentType is the Content-Type of an
// InvokeEndpointWithResponseStream answer.
const StreamContentType = "application/vnd.amazon.eventstream"

// Event and exception names of the runtime's ResponseStream union.
const (
	eventPayloadPart           = "PayloadPart"
	exceptionModelStreamError  = "ModelStreamError"
	exceptionInternalStreamErr = "InternalStreamFailure"
)

// partSize is the most a PayloadPart carries: what one read of the
// model server's body returns, up to this.
const partSize = 32 << 10

// streamWriter writes the runtime's ResponseStream as AWS event-stream
// messages: each PayloadPart an event whose payload is the part's bytes
// as they are, a failure an exception message with a JSON payload. It is
// not safe for concurrent use; flushing is the caller's.
type streamWriter struct {
	w   io.Writer
	enc *eventstream.Encoder
}

func newStreamWriter(w io.Writer) *streamWriter {
	return &streamWriter{w: w, enc: eventstream.NewEncoder()}
}

// hdrPayloadPart are a PayloadPart's headers, built once; the encoder
// only reads them. The part's bytes are its whole payload (the Bytes
// member is the event's @eventPayload), hence octet-stream.
var hdrPayloadPart = func() eventstream.Headers {
	var h eventstream.Headers
	h.Set(":message-type", eventstream.StringValue("event"))
	h.Set(":event-type", eventstream.StringValue(eventPayloadPart))
	h.Set(":content-type", eventstream.StringValue("application/octet-stream"))
	return h
}()

// part writes one PayloadPart.
func (s *streamWriter) part(b []byte) error {
	return s.enc.Encode(s.w, eventstream.Message{Headers: hdrPayloadPart, Payload: b})
}

// streamError is the payload of a stream's exception: the members of
// ModelStreamError (Message, ErrorCode) and InternalStreamFailure
// (Message), by their model names.
type streamError struct {
	Message   string `json:"Message"`
	ErrorCode string `json:"ErrorCode,omitempty"`
}

// exception writes a failure after the stream began: name is
// ModelStreamError or InternalStreamFailure, code the ModelStreamError's
// ErrorCode.
func (s *streamWriter) exception(name, code, message string) error {
	var h eventstream.Headers
	h.Set(":message-type", eventstream.StringValue("exception"))
	h.Set(":exception-type", eventstream.StringValue(name))
	h.Set(":content-type", eventstream.StringValue("application/json"))
	b, err := json.Marshal(streamError{Message: message, ErrorCode: code})
	if err != nil {
		return err
	}
	return s.enc.Encode(s.w, eventstream.Message{Headers: h, Payload: b})
}

// invokeStream serves InvokeEndpointWithResponseStream. A failure before
// the model server begins to answer is written as InvokeEndpoint writes
// it; after, the stream ends with an exception event, so that no client
// takes a cut answer for a whole one.
//
// The timeout bounds each wait on the model server — for the stream to
// begin, then for each next part — but not the time spent writing to the
// client: a generation may take minutes in all, and a slow reader is not
// the model's fault.
func (h *Handler) invokeStream(w http.ResponseWriter, r *http.Request, c *call) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	timeout := h.timeout()
	wait := time.AfterFunc(timeout, func() { cancel(hosting.ErrTimedOut) })
	defer wait.Stop()

	res, err := h.Gateway.InvokeStream(ctx, c.Call, &c.inv)
	wait.Stop()
	c.LimitHeaders(w.Header())
	if err != nil {
		h.failed(w, r, c, err)
		return
	}
	body := res.Body
	// Close the body when the wait times out or the client hangs up, to
	// end a Read that waits on the model server.
	unwatch := context.AfterFunc(ctx, func() { body.Close() })
	defer func() {
		if unwatch() {
			body.Close()
		}
	}()

	hdr := w.Header()
	setRequestID(w, r)
	hdr.Set("Content-Type", StreamContentType)
	setHeader(hdr, headerStreamContentType, res.ContentType)
	setHeader(hdr, headerInvokedVariant, res.Variant)
	setHeader(hdr, headerCustomAttributes, res.CustomAttributes)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()

	sw := newStreamWriter(w)
	buf := make([]byte, partSize)
	var ttft *time.Duration
	for {
		wait.Reset(timeout)
		n, rerr := body.Read(buf)
		wait.Stop()
		if n > 0 {
			if ttft == nil {
				d := time.Since(c.Start)
				ttft = &d
			}
			if sw.part(buf[:n]) != nil || rc.Flush() != nil {
				h.Gateway.Finish(c.Call, llm.Usage{}, ttft, context.Canceled)
				return
			}
		}
		if rerr == io.EOF {
			c.ModelLatency = res.ModelLatency()
			h.Gateway.Finish(c.Call, llm.Usage{}, ttft, nil)
			return
		}
		if rerr != nil {
			h.Gateway.Finish(c.Call, llm.Usage{}, ttft, h.streamFailed(ctx, r, c, sw, rerr))
			rc.Flush()
			return
		}
	}
}

// streamFailed ends a stream whose body failed with err: with a
// ModelStreamError when the model server was too slow or its connection
// broke, with an InternalStreamFailure when the failure is Junction's. It
// returns the failure as the call's outcome: the client's hang-up as
// the context's error, else the exception written, by its name.
func (h *Handler) streamFailed(ctx context.Context, r *http.Request, c *call, sw *streamWriter, err error) error {
	variant := c.Variant
	if variant == "" {
		variant = c.inv.Endpoint
	}
	name, code, message := exceptionModelStreamError, StreamBroken, ""
	he, ok := asHosting(err)
	switch {
	case r.Context().Err() != nil:
		return context.Canceled
	case errors.Is(context.Cause(ctx), hosting.ErrTimedOut):
		code = StreamTimeExceeded
		message = "Your model " + variant + " did not send the next part of its answer within " + h.timeout().String() +
			", Junction's invocation timeout."
	case ok && (he.Code == hosting.ErrInternalFailure || he.Code == hosting.ErrServiceUnavailable):
		name, code, message = exceptionInternalStreamErr, "", he.Message
	case ok:
		message = he.Message
	default:
		h.log().LogAttrs(r.Context(), slog.LevelWarn, "sagemaker: model stream broke", slog.String("request_id", c.RequestID),
			slog.String("endpoint", c.inv.Endpoint), slog.String("variant", variant), slog.String("inference_id", c.inv.InferenceID),
			slog.Any("err", err))
		message = "The connection to the model server of " + variant + " was reset or closed before its answer ended."
	}
	sw.exception(name, code, message)
	status := http.StatusFailedDependency
	if name == exceptionInternalStreamErr {
		status = http.StatusInternalServerError
	}
	return &hosting.Error{Status: status, Code: name, Message: message, Variant: c.Variant}
}
