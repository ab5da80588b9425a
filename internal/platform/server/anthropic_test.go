package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// fakeAnthropic answers /v1/messages with the adapter's golden wire files
// (written from Anthropic's documented examples) and records the bodies.
func fakeAnthropic(t *testing.T, plain, stream string) (*httptest.Server, *[]map[string]any) {
	t.Helper()
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messages" || r.Header.Get("x-api-key") != "ak-upstream" || r.Header.Get("anthropic-version") == "" {
			w.WriteHeader(400)
			io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad path or headers"}}`)
			return
		}
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		got = append(got, body)
		name, ct := plain, "application/json"
		if body["stream"] == true {
			name, ct = stream, "text/event-stream"
		}
		b, err := os.ReadFile("../../provider/anthropic/testdata/" + name)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", ct)
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestAnthropicThroughOpenAISurface(t *testing.T) {
	up, got := fakeAnthropic(t, "messages_response.json", "stream_text.sse")
	j := startWith(t, &fakeopenai.Server{},
		fmt.Sprintf(`  - {name: claude, type: anthropic, base_url: %q, api_key: "ak-upstream"}`, up.URL),
		`  - {name: sonnet, provider: claude, upstream_model: claude-sonnet-4-5, price: {input_per_1k: 0.003, output_per_1k: 0.015, cached_input_per_1k: 0.0003}}`)
	client := j.sdk(adminKey)
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "sonnet",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You are Claude."), openai.UserMessage("Hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "Hi! My name is Claude." || resp.Choices[0].FinishReason != "stop" {
		t.Fatalf("response %+v", resp.Choices[0])
	}
	// Anthropic reports cache reads and writes apart from input_tokens;
	// OpenAI's prompt_tokens includes them.
	if resp.Usage.PromptTokens != 21+1000+2000 || resp.Usage.PromptTokensDetails.CachedTokens != 2000 || resp.Usage.CompletionTokens != 393 {
		t.Fatalf("usage %+v", resp.Usage)
	}
	if (*got)[0]["system"] != "You are Claude." || (*got)[0]["model"] != "claude-sonnet-4-5" {
		t.Fatalf("upstream body %v", (*got)[0])
	}

	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "sonnet", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello")},
	})
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "Hello!" {
		t.Fatalf("streamed %q", acc.Choices[0].Message.Content)
	}

	recs := j.records(2)
	plain, streamed := recs[1], recs[0] // newest first
	// Cache writes cost 1.25 × the input price, cache reads the cached price.
	want := (21*0.003 + 1000*0.003*1.25 + 2000*0.0003 + 393*0.015) / 1000
	if plain.Provider != "claude" || plain.CachedTokens != 2000 || plain.CostUSD == nil || math.Abs(*plain.CostUSD-want) > 1e-12 {
		t.Fatalf("plain record %+v (want cost %v)", plain, want)
	}
	if !streamed.Stream || streamed.InputTokens != 25 || streamed.OutputTokens != 15 || streamed.TTFTMS == nil {
		t.Fatalf("stream record %+v", streamed)
	}
}
