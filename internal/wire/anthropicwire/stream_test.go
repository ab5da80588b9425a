package anthropicwire

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/sse"
)

var update = flag.Bool("update", false, "rewrite the encoder's golden streams from its output")

// transcript renders events one per line so that a stream's expected shape
// reads like the wire it came from.
func transcript(evs []llm.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.String()
	}
	return out
}

func sameLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events\ngot:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// decodeStream decodes an SSE body to its canonical events, copying each
// (the decoder reuses its slice), and reports how it ended: io.EOF after
// message_stop, the error event's body, or a failure.
func decodeStream(t *testing.T, body []byte) ([]llm.Event, error) {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(body))
	var d StreamDecoder
	var evs []llm.Event
	for {
		e, err := r.Next()
		if err != nil {
			return evs, err
		}
		out, failed, err := d.Decode(e.Name, e.Data)
		if err != nil {
			return evs, err
		}
		evs = append(evs, out...)
		if failed != nil {
			return evs, fmt.Errorf("%s: %s", failed.Type, failed.Message)
		}
		if d.Done() {
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("events after message_stop: %v", err)
			}
			return evs, io.EOF
		}
	}
}

func TestStreamDecode(t *testing.T) {
	tests := []struct {
		file string
		want []string
		end  string
	}{
		{"stream_text.sse", []string{
			"start msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY claude-sonnet-4-5-20250929",
			`text "Hello"`,
			`text "!"`,
			"stop stop",
			"usage in=25 out=15 cached=0 write=0",
		}, "EOF"},
		// The thinking block, its signature, pings, block stops and the
		// empty first argument fragment yield nothing; tool calls are
		// numbered among tool calls (0, 1), not by content block (2, 3).
		{"stream_tool_use.sse", []string{
			"start msg_014p7gG3wDgGV9EUtLvnow3U claude-sonnet-4-5-20250929",
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
		}, "EOF"},
		{"stream_error.sse", []string{
			"start msg_01XFDUDYJgAACzvnptvVoYEL claude-sonnet-4-5-20250929",
			`text "Hello"`,
		}, "overloaded_error: Overloaded"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			evs, err := decodeStream(t, golden(t, tt.file))
			sameLines(t, transcript(evs), tt.want)
			if err == nil || err.Error() != tt.end {
				t.Fatalf("end: %v, want %s", err, tt.end)
			}
		})
	}
}

func TestStreamDecodeNotJSON(t *testing.T) {
	var d StreamDecoder
	if _, _, err := d.Decode("content_block_delta", []byte("{not json")); err == nil {
		t.Fatal("no error for a body that is not JSON")
	}
	if _, _, err := d.Decode("", []byte("nope")); err == nil {
		t.Fatal("no error for an unnamed event that is not JSON")
	}
}

// render writes frames as the surface sends them.
func render(w *bytes.Buffer, frames []Frame) {
	for _, f := range frames {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", f.Name, f.Data)
	}
}

// encode runs evs through a StreamEncoder and returns the SSE body.
func encode(evs []llm.Event, finish bool) []byte {
	e := StreamEncoder{ID: "msg_junction1", Model: "gpt-4o-mini"}
	var buf bytes.Buffer
	for _, ev := range evs {
		render(&buf, e.Encode(ev))
	}
	if finish {
		render(&buf, e.Finish())
	}
	return buf.Bytes()
}

func goldenStream(t *testing.T, name string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", name), got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := golden(t, name); !bytes.Equal(got, want) {
		t.Fatalf("encoded stream differs from testdata/%s\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// openAIToolStream is what an OpenAI upstream's tool-calling stream
// decodes to: text, then two calls whose arguments arrive in pieces, the
// stop, then the usage.
func openAIToolStream() []llm.Event {
	args := func(i int, s string) llm.Event {
		return llm.Event{Type: llm.EventToolArgs, Index: i, ToolCall: &llm.ToolCall{Arguments: s}}
	}
	return []llm.Event{
		{Type: llm.EventStart, ID: "chatcmpl-fake123", Model: "gpt-4o-mini-2024-07-18"},
		{Type: llm.EventText, Text: "Let me check."},
		{Type: llm.EventText, Text: " One moment."},
		{Type: llm.EventToolCall, Index: 0, ToolCall: &llm.ToolCall{ID: "call_abc123", Name: "get_weather"}},
		args(0, `{"city":`), args(0, `"Paris"}`),
		{Type: llm.EventToolCall, Index: 1, ToolCall: &llm.ToolCall{ID: "call_def456", Name: "get_time"}},
		args(1, `{}`),
		{Type: llm.EventStop, StopReason: llm.StopToolCalls},
		{Type: llm.EventUsage, Usage: &llm.Usage{InputTokens: 50, OutputTokens: 10, CachedInputTokens: 20}},
	}
}

func TestStreamEncode(t *testing.T) {
	t.Run("tool use", func(t *testing.T) {
		goldenStream(t, "encoded_tool_use.sse", encode(openAIToolStream(), true))
	})
	t.Run("usage before stop", func(t *testing.T) {
		// Bedrock-style order; message_delta waits for both.
		goldenStream(t, "encoded_text.sse", encode([]llm.Event{
			{Type: llm.EventStart, Model: "x"},
			{Type: llm.EventText, Text: "Hello"},
			{Type: llm.EventText, Text: ""},
			{Type: llm.EventText, Text: " \"world\"\n"},
			{Type: llm.EventUsage, Usage: &llm.Usage{InputTokens: 12, OutputTokens: 3}},
			{Type: llm.EventStop, StopReason: llm.StopLength},
		}, true))
	})
	t.Run("no stop and no usage", func(t *testing.T) {
		goldenStream(t, "encoded_bare.sse", encode([]llm.Event{{Type: llm.EventText, Text: "Hi"}}, true))
	})
}

// The encoder's output is a stream a decoder (Junction's own, or an SDK's)
// reads back to the same events: block indexes are in order, each block
// opens before its deltas, and the stream ends with message_stop.
func TestStreamRoundTrip(t *testing.T) {
	for _, file := range []string{"stream_text.sse", "stream_tool_use.sse"} {
		t.Run(file, func(t *testing.T) {
			evs, err := decodeStream(t, golden(t, file))
			if err != io.EOF {
				t.Fatal(err)
			}
			evs = append([]llm.Event(nil), evs...)
			again, err := decodeStream(t, encode(evs, true))
			if err != io.EOF {
				t.Fatal(err)
			}
			want := transcript(evs)
			want[0] = "start " + evs[0].ID + " gpt-4o-mini" // the client's model name
			sameLines(t, transcript(again), want)
		})
	}
	t.Run("openai tool stream", func(t *testing.T) {
		evs := openAIToolStream()
		again, err := decodeStream(t, encode(evs, true))
		if err != io.EOF {
			t.Fatal(err)
		}
		want := transcript(evs)
		want[0] = "start chatcmpl-fake123 gpt-4o-mini"
		sameLines(t, transcript(again), want)
	})
}

// Blocks open and close strictly in order, as Anthropic sends them.
func TestStreamEncodeBlockOrder(t *testing.T) {
	r := sse.NewReader(bytes.NewReader(encode(openAIToolStream(), true)))
	var names []string
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Name != EventContentBlockDelta {
			names = append(names, e.Name)
		}
	}
	want := "message_start content_block_start content_block_stop content_block_start content_block_stop " +
		"content_block_start content_block_stop message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("events\ngot:  %s\nwant: %s", got, want)
	}
}

func TestStreamEncodeInterleavedArguments(t *testing.T) {
	args := func(i int, s string) llm.Event {
		return llm.Event{Type: llm.EventToolArgs, Index: i, ToolCall: &llm.ToolCall{Arguments: s}}
	}
	evs := []llm.Event{
		{Type: llm.EventStart, ID: "x"},
		{Type: llm.EventToolCall, Index: 0, ToolCall: &llm.ToolCall{ID: "a", Name: "f"}},
		{Type: llm.EventToolCall, Index: 1, ToolCall: &llm.ToolCall{ID: "b", Name: "g"}},
		args(0, `{"x":1}`), args(1, `{"y":2}`),
		args(7, `{"lost":true}`), // a call that never opened
	}
	out := string(encode(evs, true))
	for _, want := range []string{
		`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"x\":1}"}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"y\":2}"}}`,
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %s in\n%s", want, out)
		}
	}
	if strings.Contains(out, "lost") {
		t.Fatalf("arguments of an unknown call were sent:\n%s", out)
	}
}
