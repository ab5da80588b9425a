package modelserver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/junctionhq/junction/internal/hosting/refmodel"
)

// sdk returns the official OpenAI client pointed at ts.
func sdk(ts *testServer) openai.Client {
	return openai.NewClient(option.WithBaseURL(ts.url+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
}

func TestOpenAIChatWithTheSDK(t *testing.T) {
	ts := start(t, nil, "--mode", "openai")
	client := sdk(ts)
	ctx := context.Background()

	models, err := client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(models.Data) != 1 || models.Data[0].ID != refmodel.DemoName || models.Data[0].OwnedBy != "junction" {
		t.Fatalf("models %+v", models.Data)
	}
	if m, err := client.Models.Get(ctx, refmodel.DemoName); err != nil || m.ID != refmodel.DemoName {
		t.Fatalf("get model: %v %v", m, err)
	}

	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: refmodel.DemoName,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("Answer in one sentence."),
			openai.UserMessage("Tell me about the keeper"),
		},
		Temperature: openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "says that the best thing to do is to listen to it."
	if resp.Choices[0].Message.Content != want || resp.Choices[0].FinishReason != "stop" || resp.Model != refmodel.DemoName {
		t.Fatalf("answer %q finish %q model %q", resp.Choices[0].Message.Content, resp.Choices[0].FinishReason, resp.Model)
	}
	// prompt: 5 + 5 tokens over both messages ("." counts); completion: 13.
	if resp.Usage.PromptTokens != 10 || resp.Usage.CompletionTokens != 13 || resp.Usage.TotalTokens != 23 {
		t.Fatalf("usage %+v", resp.Usage)
	}
	if !strings.HasPrefix(resp.ID, "chatcmpl-") || resp.Object != "chat.completion" {
		t.Fatalf("id %q object %q", resp.ID, resp.Object)
	}

	limited, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:               refmodel.DemoName,
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me about the keeper")},
		MaxCompletionTokens: openai.Int(4),
		Temperature:         openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if limited.Choices[0].Message.Content != "says that the best" || limited.Choices[0].FinishReason != "length" || limited.Usage.CompletionTokens != 4 {
		t.Fatalf("limited: %q %q %+v", limited.Choices[0].Message.Content, limited.Choices[0].FinishReason, limited.Usage)
	}

	seeded := func() string {
		r, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:     refmodel.DemoName,
			Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("the harbour")},
			Seed:      openai.Int(42),
			MaxTokens: openai.Int(20),
		})
		if err != nil {
			t.Fatal(err)
		}
		return r.Choices[0].Message.Content
	}
	if a, b := seeded(), seeded(); a != b || a == "" {
		t.Fatalf("seed 42 gave %q then %q", a, b)
	}
}

func TestOpenAIStreamWithTheSDK(t *testing.T) {
	ts := start(t, nil, "--mode", "openai")
	client := sdk(ts)
	params := openai.ChatCompletionNewParams{
		Model:         refmodel.DemoName,
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me about the keeper")},
		Temperature:   openai.Float(0),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	acc := openai.ChatCompletionAccumulator{}
	chunks, usageChunks := 0, 0
	for stream.Next() {
		c := stream.Current()
		acc.AddChunk(c)
		chunks++
		if c.Object != "chat.completion.chunk" {
			t.Fatalf("object %q", c.Object)
		}
		if len(c.Choices) == 0 {
			usageChunks++
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	got := acc.Choices[0]
	if got.Message.Content != "says that the best thing to do is to listen to it." || got.FinishReason != "stop" {
		t.Fatalf("accumulated %q finish %q", got.Message.Content, got.FinishReason)
	}
	// role chunk + 13 pieces + finish chunk + usage chunk
	if chunks != 16 || usageChunks != 1 || acc.Usage.CompletionTokens != 13 || acc.Usage.PromptTokens != 5 {
		t.Fatalf("%d chunks, %d usage chunks, usage %+v", chunks, usageChunks, acc.Usage)
	}

	// Without include_usage there is no usage chunk; a limit ends with length.
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{}
	params.MaxTokens = openai.Int(3)
	stream = client.Chat.Completions.NewStreaming(context.Background(), params)
	acc = openai.ChatCompletionAccumulator{}
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) == 0 || c.JSON.Usage.Valid() && c.Usage.TotalTokens > 0 {
			t.Fatalf("unexpected usage chunk %s", c.RawJSON())
		}
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "says that the" || acc.Choices[0].FinishReason != "length" {
		t.Fatalf("limited stream %q %q", acc.Choices[0].Message.Content, acc.Choices[0].FinishReason)
	}
}

func TestOpenAIStreamWireFormat(t *testing.T) {
	ts := start(t, nil, "--mode", "openai")
	r := do(t, "POST", ts.url+"/v1/chat/completions",
		`{"model": "x", "messages": [{"role": "user", "content": [{"type": "text", "text": "the sea is"}]}], "temperature": 0, "max_tokens": 2, "stream": true, "stream_options": {"include_usage": true}}`,
		"Content-Type: application/json")
	if r.status != 200 || r.header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %q", r.status, r.header.Get("Content-Type"))
	}
	events := strings.Split(strings.TrimSuffix(r.body, "\n\n"), "\n\n")
	if len(events) != 6 || events[5] != "data: [DONE]" {
		t.Fatalf("events %q", events)
	}
	for i, want := range []string{
		`"delta":{"role":"assistant","content":""}`,
		`"delta":{"content":"never"}`,
		`"delta":{"content":" the"}`,
		`"delta":{},"logprobs":null,"finish_reason":"length"`,
		`"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}`,
	} {
		if !strings.HasPrefix(events[i], "data: {") || !strings.Contains(events[i], want) {
			t.Errorf("event %d %q, want it to contain %s", i, events[i], want)
		}
		if i < 4 && !strings.Contains(events[i], `"usage":null`) {
			t.Errorf("event %d lacks usage null: %s", i, events[i])
		}
	}
}

func TestOpenAIErrors(t *testing.T) {
	ts := start(t, nil, "--mode", "openai", "--faults")
	client := sdk(ts)
	ctx := context.Background()
	_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    refmodel.DemoName,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("no user here")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Type != "invalid_request_error" || apiErr.Param != "messages" {
		t.Fatalf("no user message: %v", err)
	}
	_, err = client.Models.Get(ctx, "gpt-4o")
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Param != "model" {
		t.Fatalf("unknown model: %v", err)
	}
	// Faults come back in the same shape.
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    refmodel.DemoName,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}, option.WithHeader(customAttributes, "status=429"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type != "rate_limit_error" {
		t.Fatalf("injected 429: %v", err)
	}

	for _, tc := range []struct{ body, param, mention string }{
		{`{"messages": [`, "", "not a valid chat completion"},
		{`{"messages": []}`, "messages", "empty"},
		{`{"messages": [{"role": "robot", "content": "hi"}]}`, "messages[0].role", "robot"},
		{`{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}`, "messages[0].content[0]", "only text"},
		{`{"messages": [{"role": "user", "content": 5}]}`, "messages[0].content", "string or an array"},
		{`{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}`, "max_tokens", "max_tokens=0"},
		{`{"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": -1}`, "max_completion_tokens", "want 1 or more"},
		{`{"messages": [{"role": "user", "content": "hi"}], "temperature": 3}`, "temperature", "0 to 2"},
		{`{"messages": [{"role": "user", "content": "hi"}], "n": 2}`, "n", "one choice"},
	} {
		r := do(t, "POST", ts.url+"/v1/chat/completions", tc.body, "Content-Type: application/json")
		wantParam := `"param":null`
		if tc.param != "" {
			wantParam = `"param":"` + tc.param + `"`
		}
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `"type":"invalid_request_error"`) ||
			!strings.Contains(r.body, wantParam) || !strings.Contains(r.body, tc.mention) {
			t.Errorf("%s: %d %s", tc.body, r.status, r.body)
		}
	}
	if r := do(t, "POST", ts.url+"/invocations", `{"inputs": "x"}`, "Content-Type: application/json"); r.status != http.StatusNotFound {
		t.Errorf("/invocations in openai mode: %d", r.status)
	}
	if r := do(t, "GET", ts.url+"/ping", ""); r.status != 200 {
		t.Errorf("/ping in openai mode: %d", r.status)
	}
}

func TestServedModelName(t *testing.T) {
	ts := start(t, nil, "--mode", "openai", "--served-model-name", "acme/ref-small")
	client := sdk(ts)
	models, err := client.Models.List(context.Background())
	if err != nil || models.Data[0].ID != "acme/ref-small" {
		t.Fatalf("%+v %v", models, err)
	}
}
