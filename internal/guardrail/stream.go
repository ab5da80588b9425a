package guardrail

import (
	"context"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// Mode is how a StreamGuard releases text, as Bedrock's
// streamProcessingMode.
type Mode string

// Stream modes.
const (
	// Sync holds back a small window of text (the longest pattern a
	// policy can match, at least 128 bytes) and releases the rest at once,
	// checked and masked: a pattern split across chunks is caught and an
	// anonymized match is rewritten exactly as in the whole text.
	Sync Mode = "sync"
	// Async releases every chunk at once and checks behind it; a
	// violation is reported so that the caller ends the stream with an
	// error. Matches to anonymize cannot be masked once sent; they are
	// reported.
	Async Mode = "async"
)

// ctxKeep is how much released text is kept as left context for
// detections that look back (an e-mail's local part, the hint word before
// an AWS secret key).
const ctxKeep = 128

// StreamGuard applies a guardrail to an answer as it streams. It is not
// safe for concurrent use.
type StreamGuard struct {
	g       *Guard
	mode    Mode
	ctx     context.Context
	left    string // released text kept as context
	pend    string // text not yet checked
	all     strings.Builder
	chars   int
	stopped bool
}

// Verdict reports findings in released text.
type Verdict struct {
	// Result is the check of the text released with this verdict (for
	// Stop in sync mode, of the text withheld).
	Result Result
	// Stop is set when a BLOCK finding means the stream must end: in sync
	// mode the offending text was withheld, and Result.Output is the
	// policy's blocked message to send instead; in async mode it was
	// already sent, and the caller ends the stream with an error.
	Stop bool
}

// NewStreamGuard starts checking an answer (source OUTPUT). ctx is used
// by the model-backed judges, which run once, at Close, on the whole
// answer.
func NewStreamGuard(ctx context.Context, g *Guard, mode Mode) *StreamGuard {
	if mode != Async {
		mode = Sync
	}
	return &StreamGuard{g: g, mode: mode, ctx: ctx}
}

// Push adds a chunk of the answer and returns the text to send now (in
// sync mode, checked and masked; in async mode, the chunk itself) and a
// verdict when there were findings.
func (s *StreamGuard) Push(chunk string) (string, *Verdict) {
	if s.stopped {
		return "", nil
	}
	s.pend += chunk
	if s.needsWhole() {
		s.all.WriteString(chunk)
	}
	// Check in steps of half a window, so that each byte is scanned a
	// few times rather than once per chunk.
	if len(s.pend) < s.g.window+s.g.window/2 {
		if s.mode == Async {
			return chunk, nil
		}
		return "", nil
	}
	out, v := s.check(false)
	if s.mode == Async {
		return chunk, v
	}
	return out, v
}

// Close checks what is held back and returns it, with a verdict when
// there were findings; model-backed judges run here on the whole answer.
func (s *StreamGuard) Close() (string, *Verdict) {
	if s.stopped {
		return "", nil
	}
	out, v := s.check(true)
	if v != nil && v.Stop {
		return "", v
	}
	if s.needsWhole() {
		res, err := s.g.apply(s.ctx, Output, s.all.String(), false)
		if err != nil {
			e := llm.AsError(err)
			res = Result{Action: ActionIntervened, ActionReason: e.Message, Blocked: true, Output: s.g.Policy.BlockedOutputsMessaging}
		}
		if res.Blocked {
			s.stopped = true
			return "", &Verdict{Result: res, Stop: true}
		}
	}
	if s.mode == Async {
		return "", v
	}
	return out, v
}

// Usage is the policy units of the text checked so far.
func (s *StreamGuard) Usage() Usage { return s.g.usage(s.chars) }

func (s *StreamGuard) needsWhole() bool {
	return len(s.g.classify) > 0 || s.g.Policy.TopicPolicy.EmbeddingModel != "" && len(s.g.Policy.TopicPolicy.Topics) > 0
}

// check scans the held text with its left context and releases all of
// it (final) or all but the window, never cutting through a finding.
func (s *StreamGuard) check(final bool) (string, *Verdict) {
	buf := s.left + s.pend
	base := len(s.left)
	fs := s.g.scan(buf, Output, nil)
	cut := len(buf)
	if !final {
		cut -= s.g.window
		for cut > base && !utf8.RuneStart(buf[cut]) {
			cut--
		}
		for moved := true; moved; {
			moved = false
			for _, f := range fs {
				if f.Start < cut && f.End > cut {
					cut, moved = f.Start, true
				}
			}
		}
		if cut <= base {
			return "", nil
		}
	}
	seg := fs[:0]
	for _, f := range fs {
		if f.Start >= base && f.Start < cut {
			f.Start -= base
			f.End -= base
			seg = append(seg, f)
		}
	}
	text := buf[base:cut]
	keep := max(0, cut-ctxKeep)
	if len(seg) == 0 {
		s.chars += utf8.RuneCountInString(text)
		s.left, s.pend = buf[keep:cut], buf[cut:]
		return text, nil
	}
	r := s.g.result(Output, text, seg)
	s.chars += r.Characters
	s.left, s.pend = buf[keep:cut], buf[cut:]
	if r.Blocked {
		s.stopped = true
		return "", &Verdict{Result: r, Stop: true}
	}
	return r.Output, &Verdict{Result: r}
}

// GuardrailCode is the error code of a stream ended by a guardrail in
// async mode.
const GuardrailCode = "GUARDRAIL_INTERVENED"

// WrapStream checks the text of a canonical answer stream as it passes.
// In sync mode a blocked answer ends with the policy's blocked message
// and stop reason content_filter (the upstream's usage still passes, for
// the ledger); in async mode it ends with an *llm.Error whose Code is
// GuardrailCode. Tool calls pass unchecked.
func WrapStream(ctx context.Context, g *Guard, s llm.Stream, mode Mode) llm.Stream {
	return &guardedStream{s: s, sg: NewStreamGuard(ctx, g, mode)}
}

type guardedStream struct {
	s       llm.Stream
	sg      *StreamGuard
	queue   []llm.Event
	blocked bool
	err     error
	closed  bool
}

func (w *guardedStream) Recv() (llm.Event, error) {
	for {
		if len(w.queue) > 0 {
			ev := w.queue[0]
			w.queue = w.queue[1:]
			return ev, nil
		}
		if w.err != nil {
			return llm.Event{}, w.err
		}
		w.step()
	}
}

// step reads one event from the stream under the guard and queues what of
// it passes, or keeps the error that ended that stream (after what the
// guard still held, at its end).
func (w *guardedStream) step() {
	ev, err := w.s.Recv()
	if err != nil {
		if err == io.EOF && !w.closed && !w.blocked {
			w.flush()
		}
		w.err = err
		return
	}
	if w.blocked {
		// Drain the upstream for its usage; its text is withheld.
		if ev.Type == llm.EventUsage {
			w.queue = append(w.queue, ev)
		}
		return
	}
	switch ev.Type {
	case llm.EventText:
		out, v := w.sg.Push(ev.Text)
		w.emit(ev, out, v)
	case llm.EventStop:
		w.flush()
		if !w.blocked && w.err == nil {
			w.queue = append(w.queue, ev)
		}
	default:
		w.queue = append(w.queue, ev)
	}
}

// Pending reports whether the next event is already at hand, so that the
// surface may write it with the one before it without flushing. While the
// stream under the guard has its next event at hand, Pending takes it
// through the guard now: text the guard holds back (sync mode) yields
// nothing yet, and the next one is taken, so the answer is known without
// waiting on the upstream. Were it answered from the stream under the
// guard alone, held-back text would leave the caller waiting there with
// a write not flushed; were it answered from the guard's queue alone,
// every released event would cost the client a write of its own.
func (w *guardedStream) Pending() bool {
	p, ok := w.s.(interface{ Pending() bool })
	for len(w.queue) == 0 && w.err == nil {
		if !ok || !p.Pending() {
			return false
		}
		w.step()
	}
	return true
}

func (w *guardedStream) flush() {
	w.closed = true
	out, v := w.sg.Close()
	w.emit(llm.Event{Type: llm.EventText}, out, v)
}

func (w *guardedStream) emit(ev llm.Event, out string, v *Verdict) {
	if out != "" {
		ev.Text = out
		w.queue = append(w.queue, ev)
	}
	if v == nil || !v.Stop {
		return
	}
	if w.sg.mode == Async {
		w.err = &llm.Error{Status: http.StatusBadRequest, Type: llm.ErrInvalidRequest, Code: GuardrailCode,
			Message: "the guardrail blocked the answer: " + v.Result.ActionReason}
		return
	}
	w.blocked = true
	w.queue = append(w.queue, llm.Event{Type: llm.EventText, Text: v.Result.Output},
		llm.Event{Type: llm.EventStop, StopReason: llm.StopContentFilter})
}

func (w *guardedStream) Close() error { return w.s.Close() }
