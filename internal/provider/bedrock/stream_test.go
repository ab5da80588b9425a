package bedrock

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

var hello = &llm.Request{Model: testModel, Messages: []llm.Message{{Role: llm.RoleUser, Content: text("hi")}}}

// drain reads s to its end and returns the events and the final error.
func drain(t *testing.T, s llm.Stream) ([]llm.Event, error) {
	t.Helper()
	var evs []llm.Event
	for {
		ev, err := s.Recv()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func TestStreamText(t *testing.T) {
	p, reqs := newFake(t, streamReply(frames(t, "stream_text.json"), nil))
	s, err := p.ChatStream(t.Context(), hello)
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	defer s.Close()
	evs, err := drain(t, s)
	if err != io.EOF {
		t.Fatalf("stream ended with %v, want io.EOF", err)
	}
	want := []llm.Event{
		{Type: llm.EventStart, ID: testRequestID, Model: testModel},
		{Type: llm.EventText, Text: "Hello"},
		{Type: llm.EventText, Text: " there"},
		{Type: llm.EventText, Text: "!"},
		{Type: llm.EventStop, StopReason: llm.StopEnd},
		// inputTokens 25 + cacheRead 1024 + cacheWrite 1
		{Type: llm.EventUsage, Usage: &llm.Usage{InputTokens: 1050, OutputTokens: 3, CachedInputTokens: 1024, CacheWriteTokens: 1}},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("events:\n%+v\nwant\n%+v", evs, want)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Errorf("Recv after the end = %v, want io.EOF again", err)
	}
	if got := only(t, reqs); got.path != "/model/"+testModel+"/converse-stream" || !strings.HasPrefix(got.auth, "AWS4-HMAC-SHA256 ") {
		t.Errorf("request %s with Authorization %q, want a signed POST to /model/%s/converse-stream", got.path, got.auth, testModel)
	}
}

// TestStreamToolCalls checks that tool calls are numbered among tool calls
// (not by content block) and that their argument fragments reassemble into
// the arguments.
func TestStreamToolCalls(t *testing.T) {
	p, _ := newFake(t, streamReply(frames(t, "stream_tool.json"), nil))
	s, err := p.ChatStream(t.Context(), hello)
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	defer s.Close()
	evs, err := drain(t, s)
	if err != io.EOF {
		t.Fatalf("stream ended with %v, want io.EOF", err)
	}

	type call struct{ id, name, args string }
	var calls []call
	var kinds []llm.EventType
	var usage *llm.Usage
	for _, ev := range evs {
		if len(kinds) == 0 || kinds[len(kinds)-1] != ev.Type {
			kinds = append(kinds, ev.Type)
		}
		switch ev.Type {
		case llm.EventToolCall:
			if ev.Index != len(calls) {
				t.Errorf("tool call %q opened at index %d, want %d", ev.ToolCall.ID, ev.Index, len(calls))
			}
			calls = append(calls, call{id: ev.ToolCall.ID, name: ev.ToolCall.Name})
		case llm.EventToolArgs:
			if ev.Index < 0 || ev.Index >= len(calls) {
				t.Fatalf("arguments for unopened tool call %d", ev.Index)
			}
			calls[ev.Index].args += ev.ToolCall.Arguments
		case llm.EventStop:
			if ev.StopReason != llm.StopToolCalls {
				t.Errorf("stop reason %q, want tool_calls", ev.StopReason)
			}
		case llm.EventUsage:
			usage = ev.Usage
		}
	}
	wantKinds := []llm.EventType{llm.EventStart, llm.EventText, llm.EventToolCall, llm.EventToolArgs,
		llm.EventToolCall, llm.EventToolArgs, llm.EventStop, llm.EventUsage}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Errorf("event kinds %v, want %v", kinds, wantKinds)
	}
	wantCalls := []struct {
		id   string
		args map[string]any
	}{
		{"tooluse_Paris01", map[string]any{"city": "Paris", "days": 3.0}},
		{"tooluse_Rome02", map[string]any{"city": "Rome"}},
	}
	if len(calls) != len(wantCalls) {
		t.Fatalf("tool calls %+v, want %d", calls, len(wantCalls))
	}
	for i, w := range wantCalls {
		var args map[string]any
		if err := json.Unmarshal([]byte(calls[i].args), &args); err != nil {
			t.Errorf("tool call %d arguments %q are not JSON: %v", i, calls[i].args, err)
		}
		if calls[i].id != w.id || calls[i].name != "get_weather" || !reflect.DeepEqual(args, w.args) {
			t.Errorf("tool call %d = %+v, want %s get_weather %v", i, calls[i], w.id, w.args)
		}
	}
	if want := (llm.Usage{InputTokens: 402, OutputTokens: 71}); usage == nil || *usage != want {
		t.Errorf("usage %+v, want %+v", usage, want)
	}
}

// TestStreamEndsEarly checks that a stream that stops before messageStop
// fails with a 502 rather than ending with io.EOF: the SDK reports a body
// cut mid-frame as a clean end.
func TestStreamEndsEarly(t *testing.T) {
	text := frames(t, "stream_text.json")
	beforeStop := text[:len(text)-2] // without messageStop and metadata
	for _, tc := range []struct {
		name  string
		reply http.HandlerFunc
	}{
		{"body ends", streamReply(beforeStop, nil)},
		{"connection cut mid-frame", streamReply(beforeStop[:2], cutMidFrame(beforeStop[2]))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newFake(t, tc.reply)
			s, err := p.ChatStream(t.Context(), hello)
			if err != nil {
				t.Fatalf("ChatStream: %v", err)
			}
			defer s.Close()
			evs, err := drain(t, s)
			var e *llm.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.Type != llm.ErrUpstream {
				t.Fatalf("stream ended with %v after %d events, want a 502 *llm.Error", err, len(evs))
			}
			if len(evs) == 0 || evs[0].Type != llm.EventStart {
				t.Errorf("events before the failure: %+v", evs)
			}
		})
	}
}

// TestStreamClose checks that Close releases a stream that is still open
// upstream, may be called twice, and that Recv then fails at once.
func TestStreamClose(t *testing.T) {
	released := make(chan struct{})
	p, _ := newFake(t, streamReply(frames(t, "stream_text.json")[:1], func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(released)
	}))
	s, err := p.ChatStream(t.Context(), hello)
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	if ev, err := s.Recv(); err != nil || ev.Type != llm.EventStart {
		t.Fatalf("Recv = %+v, %v; want the start event", ev, err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	<-released // the fake saw the connection go
	var e *llm.Error
	if _, err := s.Recv(); !errors.As(err, &e) {
		t.Errorf("Recv after Close = %v, want an *llm.Error", err)
	}
}
