package bedrock

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/wire/bedrockwire"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// decodeNative builds the call and the canonical request of an
// InvokeModel body, in whichever native family it is written. The
// guardrail comes from the X-Amzn-Bedrock-Guardrail* headers, as
// InvokeModel takes it.
func (h *Handler) decodeNative(w http.ResponseWriter, r *http.Request, body []byte) (*gateway.Call, *llm.Request, native, bool) {
	var fam native
	c, req, ok := h.begin(w, r, func(c *gateway.Call) (*llm.Request, error) {
		var err error
		if fam, err = nativeFamily(body); err != nil {
			return nil, err
		}
		if id := r.Header.Get("X-Amzn-Bedrock-Guardrailidentifier"); id != "" {
			v := r.Header.Get("X-Amzn-Bedrock-Guardrailversion")
			if v == "" {
				v = "DRAFT"
			}
			c.GuardName = id + ":" + v
			c.GuardTrace = r.Header.Get("X-Amzn-Bedrock-Trace") == "ENABLED" || r.Header.Get("X-Amzn-Bedrock-Trace") == "ENABLED_FULL"
		}
		return fam.decode(body, c.Model)
	})
	return c, req, fam, ok
}

// invoke answers InvokeModel: the answer in the request's native family,
// with Bedrock's token-count and latency headers.
func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, body []byte) {
	c, req, fam, ok := h.decodeNative(w, r, body)
	if !ok {
		return
	}
	defer h.Gateway.End(c)
	req.Stream = false
	resp, err := h.Gateway.Chat(r.Context(), c, req)
	c.RouteHeaders(w.Header())
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	id := resp.ID
	if id == "" {
		id = "msg_" + c.RequestID
	}
	out, err := fam.response(resp, id, c.Served())
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	setRequestID(w, r)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Amzn-Bedrock-Input-Token-Count", strconv.Itoa(resp.Usage.InputTokens))
	hd.Set("X-Amzn-Bedrock-Output-Token-Count", strconv.Itoa(resp.Usage.OutputTokens))
	hd.Set("X-Amzn-Bedrock-Invocation-Latency", strconv.FormatInt(time.Since(c.Start).Milliseconds(), 10))
	w.Write(out)
}

// invokeStream answers InvokeModelWithResponseStream: chunk events whose
// bytes are the native family's own streaming chunks, flushed as they
// come; the last carries amazon-bedrock-invocationMetrics. A stream that
// fails after it began ends with an exception message.
func (h *Handler) invokeStream(w http.ResponseWriter, r *http.Request, body []byte) {
	c, req, fam, ok := h.decodeNative(w, r, body)
	if !ok {
		return
	}
	defer h.Gateway.End(c)
	req.Stream = true
	s, err := h.Gateway.ChatStream(r.Context(), c, req)
	c.RouteHeaders(w.Header())
	if err != nil {
		if r.Context().Err() == nil {
			WriteError(w, r, llm.AsError(err))
		}
		return
	}
	setRequestID(w, r)
	w.Header().Set("Content-Type", bedrockwire.StreamContentType)
	w.Header().Set("X-Amzn-Bedrock-Content-Type", "application/json")
	flush := func() {}
	if f, ok := w.(http.Flusher); ok {
		flush = f.Flush
	}
	cw := bedrockwire.NewChunkWriter(w)
	var usage llm.Usage
	var first time.Duration
	write := func(chunks [][]byte) error {
		for _, b := range chunks {
			if first == 0 {
				first = time.Since(c.Start)
			}
			if err := cw.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		ev, err := s.Recv()
		if err != nil {
			if err == io.EOF {
				m := metrics{InputTokenCount: usage.InputTokens, OutputTokenCount: usage.OutputTokens,
					InvocationLatency: time.Since(c.Start).Milliseconds(), FirstByteLatency: first.Milliseconds()}
				err = write(fam.end(m))
			} else if r.Context().Err() == nil {
				cw.Exception(llm.AsError(err))
			}
			flush()
			s.Finish(err)
			return
		}
		if ev.Type == llm.EventUsage && ev.Usage != nil {
			usage = *ev.Usage
		}
		if werr := write(fam.chunks(ev)); werr != nil {
			s.Finish(r.Context().Err())
			return
		}
		if !s.Pending() {
			flush()
		}
	}
}
