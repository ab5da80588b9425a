package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// transcript renders events one per line so that a stream's expected shape
// reads like the wire it came from.
func transcript(evs []llm.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.String()
	}
	return out
}

// recvAll reads s until Recv fails and returns the events and that error.
func recvAll(t *testing.T, s llm.Stream) ([]llm.Event, error) {
	t.Helper()
	var evs []llm.Event
	for range 10000 {
		ev, err := s.Recv()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	t.Fatal("the stream does not end")
	return nil, nil
}

func sameLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events\ngot:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func openStream(t *testing.T, respond http.HandlerFunc) (llm.Stream, <-chan received) {
	t.Helper()
	p, got := fake(t, Config{}, respond)
	s, err := p.ChatStream(context.Background(), &llm.Request{Model: testModel})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, got
}

func TestStreamText(t *testing.T) {
	s, got := openStream(t, serve(t, 200, "stream_text.sse"))
	evs, err := recvAll(t, s)
	if err != io.EOF {
		t.Fatalf("end: err = %v, want io.EOF", err)
	}
	sameLines(t, transcript(evs), []string{
		"start msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY " + testModel,
		`text "Hello"`,
		`text "!"`,
		"stop stop",
		"usage in=25 out=15 cached=0 write=0",
	})
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("Recv after the end: err = %v, want io.EOF again", err)
	}
	var b struct {
		Stream bool `json:"stream"`
	}
	json.Unmarshal(lastRequest(t, got).body, &b)
	if !b.Stream {
		t.Fatal(`the request did not ask for "stream": true`)
	}
}

func TestStreamToolUse(t *testing.T) {
	s, _ := openStream(t, serve(t, 200, "stream_tool_use.sse"))
	evs, err := recvAll(t, s)
	if err != io.EOF {
		t.Fatalf("end: err = %v, want io.EOF", err)
	}
	// The thinking block, its signature, pings, block stops and the empty
	// first argument fragment yield nothing; tool calls are numbered among
	// tool calls (0, 1), not by content block (2, 3).
	sameLines(t, transcript(evs), []string{
		"start msg_014p7gG3wDgGV9EUtLvnow3U " + testModel,
		`text "Okay"`,
		`text ", let's check the weather for San Francisco, CA:"`,
		"tool 0 toolu_01T1x1fJ34qAmk2tNTrN7Up6 get_weather",
		`args 0 "{\"location\":"`,
		`args 0 " \"San"`,
		`args 0 " Francisc"`,
		`args 0 "o,"`,
		`args 0 " CA\""`,
		`args 0 ", "`,
		`args 0 "\"unit\": \"fah"`,
		`args 0 "renheit\"}"`,
		"tool 1 toolu_01B19r01rx01mr028946mr0 get_time",
		`args 1 "{\"timezone\": "`,
		`args 1 "\"America/Los_Angeles\"}"`,
		"stop tool_calls",
		"usage in=2572 out=89 cached=2000 write=100",
	})

	args := map[int]string{}
	for _, ev := range evs {
		if ev.Type == llm.EventToolArgs {
			args[ev.Index] += ev.ToolCall.Arguments
		}
	}
	for i, want := range []string{
		`{"location":"San Francisco, CA","unit":"fahrenheit"}`,
		`{"timezone":"America/Los_Angeles"}`,
	} {
		if !json.Valid([]byte(args[i])) {
			t.Fatalf("tool %d arguments %q are not valid JSON", i, args[i])
		}
		jsonEqual(t, []byte(args[i]), []byte(want))
	}
}

func TestStreamTolerance(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"unknown events, comments and unnamed events",
			": keep-alive\n\n" +
				"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n" +
				"event: future_event\ndata: {\"type\":\"future_event\",\"index\":0}\n\n" +
				"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\n" +
				"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"citations_delta\",\"citation\":{}}}\n\n" +
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":1}}\n\n" +
				"data: {\"type\":\"message_stop\"}\n\n",
			[]string{"start msg_1 m", `text "Hi"`, "stop length", "usage in=3 out=1 cached=0 write=0"}},
		{"server tool input is not a client tool call",
			"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"model\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n" +
				"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":\"web_search\",\"input\":{}}}\n\n" +
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"query\\\":\\\"x\\\"}\"}}\n\n" +
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":4,\"output_tokens\":2}}\n\n" +
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			[]string{"start msg_2 m", "stop stop", "usage in=14 out=2 cached=4 write=0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, tt.body)
			})
			evs, err := recvAll(t, s)
			if err != io.EOF {
				t.Fatalf("end: err = %v, want io.EOF", err)
			}
			sameLines(t, transcript(evs), tt.want)
		})
	}
}

func TestStreamErrorEvent(t *testing.T) {
	s, _ := openStream(t, serve(t, 200, "stream_error.sse"))
	evs, err := recvAll(t, s)
	sameLines(t, transcript(evs), []string{
		"start msg_01XFDUDYJgAACzvnptvVoYEL " + testModel,
		`text "Hello"`,
	})
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != 503 || e.Type != llm.ErrOverloaded || e.Code != "overloaded_error" ||
		e.Provider != "claude-test" || !strings.Contains(e.Message, "Overloaded") {
		t.Fatalf("err = %#v, want a 503 overloaded error from claude-test", err)
	}
	if _, again := s.Recv(); again != err {
		t.Fatalf("Recv after the error: err = %v, want the same error", again)
	}
}

// events returns the first n SSE events of a golden stream.
func events(t testing.TB, file string, n int) []byte {
	parts := bytes.SplitAfter(golden(t, file), []byte("\n\n"))
	return bytes.Join(parts[:n], nil)
}

func TestStreamCut(t *testing.T) {
	tests := []struct {
		name    string
		respond func(t *testing.T) http.HandlerFunc
	}{
		{"body ends between events", func(t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Write(events(t, "stream_text.sse", 4))
			}
		}},
		{"body ends inside an event", func(t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Write(events(t, "stream_text.sse", 4))
				io.WriteString(w, "event: content_block_delta\ndata: {\"type\": \"content_bl")
			}
		}},
		{"connection drops", func(t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				chunk := events(t, "stream_text.sse", 4)
				fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(chunk), chunk)
				buf.Flush()
			}
		}},
		{"event data is not JSON", func(t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Write(events(t, "stream_text.sse", 2))
				io.WriteString(w, "event: content_block_delta\ndata: {not json\n\n")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStream(t, tt.respond(t))
			evs, err := recvAll(t, s)
			if len(evs) == 0 || evs[0].Type != llm.EventStart {
				t.Fatalf("events before the cut = %v, want the start at least", transcript(evs))
			}
			if errors.Is(err, io.EOF) || !is502(err) {
				t.Fatalf("err = %#v, want a 502 *llm.Error, not io.EOF", err)
			}
		})
	}
}

// hold answers with the first events of a stream and then waits for the
// client to go away, closing gone when it has.
func hold(t *testing.T, gone chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Write(events(t, "stream_text.sse", 2))
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		close(gone)
	}
}

func TestStreamCancel(t *testing.T) {
	gone := make(chan struct{})
	p, _ := fake(t, Config{}, hold(t, gone))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := p.ChatStream(ctx, &llm.Request{Model: testModel})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ev, err := s.Recv(); err != nil || ev.Type != llm.EventStart {
		t.Fatalf("first Recv = %v, %v; want the start", ev, err)
	}
	cancel()
	if _, err := s.Recv(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv after cancel: err = %v, want context.Canceled", err)
	}
	waitFor(t, gone, "the upstream request to be cancelled")
}

func TestStreamClose(t *testing.T) {
	gone := make(chan struct{})
	s, _ := openStream(t, hold(t, gone))
	if ev, err := s.Recv(); err != nil || ev.Type != llm.EventStart {
		t.Fatalf("first Recv = %v, %v; want the start", ev, err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.Recv() // blocks: the fake sends nothing more
		errc <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := <-errc; err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Recv aborted by Close: err = %v, want a failure", err)
	}
	waitFor(t, gone, "the upstream connection to close")
}
