package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/tokens"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// drainWait is how long a stream whose client hung up after its
// finish_reason is still read, for the usage the upstream sends last.
const drainWait = 2 * time.Second

// relay is the answer of a streamed call as one llm.Stream, across
// upstream attempts. When an attempt breaks after content reached the
// client — cut, stalled, an error event — the relay continues the answer
// on the next deployment: with the text sent so far as an assistant
// prefill where the model continues one, streaming only the
// continuation; else by asking again and forwarding only what extends the
// text already sent, when the new answer starts with it. When neither
// works the stream ends with the first failure, never as if complete.
type relay struct {
	g   *Gateway
	c   *Call
	ctx context.Context // the client's
	req *llm.Request

	cur   *attempt
	queue []llm.Event
	// sent is the text forwarded to the client; other is set once a tool
	// call was, which no continuation can extend. tools holds the tool
	// calls' names and arguments forwarded (by the last attempt: no other
	// follows a tool call), for counting the tokens of a stream cut before
	// its usage.
	sent    strings.Builder
	tools   strings.Builder
	other   bool
	started bool
	stopped bool
	// skip is text a re-asked answer must repeat before anything of it is
	// forwarded; trim is whitespace cut off a prefill, dropped again from
	// the start of its continuation.
	skip, trim string
	// diverged is set when a re-asked answer turned out different.
	diverged bool
	// cause is the failure that first broke the stream: the one reported
	// if it cannot be continued.
	cause error
	ttft  time.Duration
}

// attempt is one upstream stream of a call.
type attempt struct {
	d      *router.Deployment
	req    *llm.Request
	s      llm.Stream
	start  time.Time
	cancel context.CancelFunc
	// release stops watching the client's context.
	release func() bool
	watch   *watchdog
	usage   *llm.Usage
	// from and to bound the text this attempt delivered within the
	// relay's sent text; to is -1 while it runs.
	from, to int
	stopped  atomic.Bool
	ended    bool
	// n is the attempt's number in the call; err what ended it.
	n   int
	err error
}

// open starts an attempt on d. Its context is the client's, except that
// a client that hangs up after finish_reason leaves it open drainWait
// longer, for the usage that follows.
func (r *relay) open(d *router.Deployment, req *llm.Request) (*attempt, error) {
	up := *req
	up.Model = d.UpstreamModel
	up.Raw = r.c.raw(req)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.ctx))
	a := &attempt{d: d, req: &up, start: time.Now(), cancel: cancel, n: r.c.Attempts, from: r.sent.Len(), to: -1}
	a.release = context.AfterFunc(r.ctx, func() {
		if a.stopped.Load() {
			time.AfterFunc(drainWait, cancel)
			return
		}
		cancel()
	})
	a.watch = newWatchdog(r.c.plan.Streams(d), cancel)
	d.Begin()
	s, err := d.Upstream.ChatStream(ctx, &up)
	if err != nil {
		a.close()
		r.g.end(r.c, d, time.Since(a.start), 0, err)
		return nil, r.clientGone(err)
	}
	a.s = s
	return a, nil
}

// clientGone returns the client's context error in place of err once the
// client has hung up, so that the call is recorded as abandoned.
func (r *relay) clientGone(err error) error {
	if r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	return err
}

func (a *attempt) close() {
	a.watch.stop()
	a.release()
	// The stream closes before its context ends: a finished stream's
	// connection can then go back to its pool (h1 reads the end of the
	// body that has arrived), where a cancelled one is dropped.
	if a.s != nil {
		a.s.Close()
	}
	a.cancel()
}

// recv reads the attempt's next event, turning a watchdog's expiry into
// the timeout it stands for.
func (a *attempt) recv() (llm.Event, error) {
	ev, err := a.s.Recv()
	if err != nil {
		if why := a.watch.expired(); why != "" {
			err = &llm.Error{Status: http.StatusGatewayTimeout, Type: llm.ErrTimeout, Provider: a.d.Provider, Message: why, Err: err}
		}
		return ev, err
	}
	a.watch.saw(ev.Type)
	switch ev.Type {
	case llm.EventStop:
		a.stopped.Store(true)
	case llm.EventUsage:
		u := *ev.Usage
		a.usage = &u
	}
	return ev, nil
}

// prime reads the first attempt up to its first content (or its end), so
// that a failure before then can still be failed over unseen.
func (r *relay) prime() error {
	for {
		ev, err := r.cur.recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if r.skippable(err) {
				continue
			}
			return r.clientGone(err)
		}
		if !r.accept(&ev) {
			continue
		}
		r.queue = append(r.queue, ev)
		switch ev.Type {
		case llm.EventText, llm.EventToolCall, llm.EventToolArgs, llm.EventStop, llm.EventUsage:
			return nil
		}
	}
}

// fail ends the current attempt, which failed with err before the client
// saw anything of it, and forgets what it queued.
func (r *relay) fail(err error) {
	r.endAttempt(err)
	r.queue, r.started = r.queue[:0], false
}

// Recv implements llm.Stream.
func (r *relay) Recv() (llm.Event, error) {
	for {
		if len(r.queue) > 0 {
			ev := r.queue[0]
			r.queue = r.queue[1:]
			return ev, nil
		}
		ev, err := r.cur.recv()
		if err == nil {
			if r.accept(&ev) {
				return ev, nil
			}
			if !r.diverged {
				continue
			}
			err = errDiverged
		}
		if err == io.EOF {
			if r.skip == "" {
				return ev, err
			}
			err = errDiverged // the new answer ended before it caught up
		}
		if r.skippable(err) {
			continue
		}
		if r.ctx.Err() != nil {
			return llm.Event{}, r.ctx.Err()
		}
		if !r.resume(err) {
			return llm.Event{}, r.cause
		}
	}
}

// errDiverged ends an attempt whose re-asked answer did not repeat the
// text the client already has.
var errDiverged = errors.New("the new answer does not continue the text already sent")

// Pending reports whether the next event is already at hand.
func (r *relay) Pending() bool {
	if len(r.queue) > 0 {
		return true
	}
	p, ok := r.cur.s.(interface{ Pending() bool })
	return ok && p.Pending()
}

// Close implements llm.Stream; the surface ends the stream with Finish.
func (r *relay) Close() error { return nil }

// accept decides what of an upstream event reaches the client, updating
// what was sent, and reports whether anything does.
func (r *relay) accept(ev *llm.Event) bool {
	switch ev.Type {
	case llm.EventStart:
		if r.started {
			return false // a continuation's start: the client has one
		}
		r.started = true
	case llm.EventText:
		t := ev.Text
		if r.trim != "" {
			n := commonPrefix(r.trim, t)
			t, r.trim = t[n:], ""
		}
		if r.skip != "" {
			n := commonPrefix(r.skip, t)
			if n < len(r.skip) && n < len(t) {
				r.diverged = true
				return false
			}
			r.skip, t = r.skip[n:], t[n:]
		}
		if t == "" {
			return false
		}
		ev.Text = t
		r.sent.WriteString(t)
		r.content()
	case llm.EventToolCall, llm.EventToolArgs:
		if r.skip != "" {
			r.diverged = true
			return false
		}
		r.other = true
		if tc := ev.ToolCall; tc != nil {
			r.tools.WriteString(tc.Name)
			r.tools.WriteString(tc.Arguments)
		}
		r.content()
	case llm.EventStop:
		if r.skip != "" {
			r.diverged = true
			return false
		}
		r.stopped = true
	}
	return true
}

// content notes the first content's arrival.
func (r *relay) content() {
	if r.ttft == 0 {
		r.ttft = time.Since(r.c.Start)
	}
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// skippable reports whether err is a malformed event the stream may go on
// after, counting it; a strict router ends the stream at it instead.
func (r *relay) skippable(err error) bool {
	if !errors.Is(err, llm.ErrMalformedEvent) || r.c.plan.StrictStreams() {
		return false
	}
	r.g.malformedEvent(r.cur.d.Provider)
	return true
}

// resume continues the answer after the current attempt failed with err
// and reports whether it could.
func (r *relay) resume(err error) bool {
	if r.cause == nil {
		r.cause = err
		if errors.Is(err, errDiverged) {
			r.cause = llm.Errorf(http.StatusBadGateway, llm.ErrUpstream, "%v", err)
		}
	}
	r.endAttempt(err)
	if r.other || r.stopped || r.diverged {
		// A tool call cannot be continued; an answer whose finish_reason
		// was sent lacks only its usage, which no other model can give;
		// a re-asked answer that went another way cannot be mended.
		return false
	}
	prev := r.cur
	last, lastErr := prev.d, err
	var again *router.Deployment
	for {
		d := again
		if d != nil {
			r.c.Attempts++
			again = nil
		} else {
			var ok bool
			var werr error
			if d, ok, werr = r.g.nextTry(r.ctx, r.c, last, lastErr); !ok || werr != nil {
				return false
			}
		}
		sent := r.sent.String()
		req := r.req
		r.skip, r.trim = "", ""
		prefill := sent != "" && d.Prefill()
		if prefill {
			trimmed := strings.TrimRight(sent, " \t\r\n")
			r.trim = sent[len(trimmed):]
			req = continuation(r.req, trimmed)
		} else {
			r.skip = sent
		}
		a, oerr := r.open(d, req)
		if oerr == nil {
			r.cur = a
			r.g.attemptRecord(r.c, prev, r.usageOf(prev), prev.err)
			r.c.Reason += ", continued after " + describe(err)
			if prefill {
				r.c.Reason += " with the partial answer as prefill"
			} else if sent != "" {
				r.c.Reason += " by asking again"
			}
			return true
		}
		if r.ctx.Err() != nil {
			return false
		}
		if prefill && llm.AsError(oerr).Type == llm.ErrInvalidRequest {
			// The model does not take a prefill after all: learn that,
			// and ask it again plainly.
			d.NoPrefill()
			again = d
			continue
		}
		last, lastErr = d, oerr
	}
}

// continuation is req with the partial answer appended as an assistant
// message for the model to continue.
func continuation(req *llm.Request, partial string) *llm.Request {
	r := *req
	r.Messages = append(append([]llm.Message(nil), req.Messages...),
		llm.Message{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartText, Text: partial}}})
	r.Continue = true
	return &r
}

// endAttempt closes the current attempt, which ended with err (nil for
// success), and feeds its outcome to its deployment.
func (r *relay) endAttempt(err error) {
	a := r.cur
	if a == nil || a.ended {
		return
	}
	a.ended, a.err, a.to = true, err, r.sent.Len()
	a.close()
	r.g.end(r.c, a.d, time.Since(a.start), r.ttft, err)
}

// usageOf is an attempt's usage: the upstream's, or when it sent none,
// Junction's count of the prompt and of the text and tool calls the
// attempt delivered.
func (r *relay) usageOf(a *attempt) usage {
	if a.usage != nil {
		return usage{Usage: *a.usage}
	}
	to := a.to
	if to < 0 {
		to = r.sent.Len()
	}
	text := r.sent.String()[a.from:to]
	var tools string
	if a == r.cur {
		tools = r.tools.String()
	}
	if text == "" && tools == "" {
		return usage{}
	}
	out := tokens.Count(a.d.UpstreamModel, text)
	if tools != "" {
		out += tokens.Count(a.d.UpstreamModel, tools)
	}
	return usage{Usage: llm.Usage{InputTokens: tokens.Request(a.d.UpstreamModel, a.req), OutputTokens: out}, estimated: true}
}

// usage is an attempt's token counts, and whether Junction estimated them.
type usage struct {
	llm.Usage
	estimated bool
}

// finish ends the call: a client that hung up after finish_reason leaves
// the upstream read a little longer for its usage, and the call is
// recorded with the last attempt's usage, estimated when none came.
func (r *relay) finish(err error) {
	a := r.cur
	if errors.Is(err, context.Canceled) && !a.ended && a.usage == nil && a.stopped.Load() {
		for a.usage == nil {
			if _, rerr := a.recv(); rerr != nil {
				break
			}
		}
	}
	r.endAttempt(err)
	u := r.usageOf(a)
	var ttft *time.Duration
	if r.ttft > 0 {
		ttft = &r.ttft
	}
	r.c.Target = a.d.Target
	r.c.estimated = u.estimated
	r.g.Finish(r.c, u.Usage, ttft, err)
}
