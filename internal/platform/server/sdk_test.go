package server_test

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// sdk returns the official OpenAI Go client pointed at Junction: only the
// base URL and key differ from talking to OpenAI.
func (j *junction) sdk(key string, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{option.WithBaseURL(j.url + "/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0)}, opts...)...)
}

func wantCost(in, cached, out int, inPrice, outPrice float64) float64 {
	return (float64(in)*inPrice + float64(out)*outPrice) / 1000
}

func TestSDKChatIsForwardedAndAccounted(t *testing.T) {
	fake := &fakeopenai.Server{Record: true, PromptTokens: 120, CompletionTokens: 30, CachedTokens: 0}
	j := start(t, fake, "")
	_, secret := j.createKey("search-app", map[string]string{"team": "search", "env": "prod"})
	client := j.sdk(secret, option.WithHeader("X-Junction-Tags", "app=faq,env=staging"))
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:       "gpt-4o-mini",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Say hello")},
		Temperature: openai.Float(0.2),
	}, option.WithJSONSet("seed", 42))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "Hello from the fake upstream. Junction forwarded this." || resp.Model != "gpt-4o-mini" {
		t.Fatalf("response %+v", resp)
	}
	if resp.Usage.PromptTokens != 120 || resp.Usage.CompletionTokens != 30 || resp.Choices[0].FinishReason != "stop" {
		t.Fatalf("usage %+v finish %q", resp.Usage, resp.Choices[0].FinishReason)
	}
	// The upstream got its own model id and key, the system message in
	// place, and the field Junction does not model (seed) untouched.
	up := fake.Requests()[0]
	if up.Body["model"] != "gpt-4o-mini-2024-07-18" || up.Header.Get("Authorization") != "Bearer sk-upstream" {
		t.Fatalf("upstream saw model %v auth %q", up.Body["model"], up.Header.Get("Authorization"))
	}
	if up.Body["seed"] != float64(42) || up.Body["temperature"] != 0.2 {
		t.Fatalf("pass-through fields lost: %s", up.Raw)
	}
	msgs := up.Body["messages"].([]any)
	if msgs[0].(map[string]any)["role"] != "system" || len(msgs) != 2 {
		t.Fatalf("messages: %s", up.Raw)
	}

	r := j.records(1)[0]
	if r.Model != "gpt-4o-mini" || r.Provider != "openai" || r.UpstreamModel != "gpt-4o-mini-2024-07-18" || r.Surface != "openai" {
		t.Fatalf("record %+v", r)
	}
	if r.KeyName != "search-app" || r.Tags["team"] != "search" || r.Tags["app"] != "faq" || r.Tags["env"] != "staging" {
		t.Fatalf("tags: key defaults overlaid by the header expected, got %v", r.Tags)
	}
	if r.InputTokens != 120 || r.OutputTokens != 30 || r.Status != 200 || r.Stream || r.LatencyMS <= 0 {
		t.Fatalf("record %+v", r)
	}
	if want := wantCost(120, 0, 30, 0.00015, 0.0006); r.CostUSD == nil || math.Abs(*r.CostUSD-want) > 1e-12 {
		t.Fatalf("cost %v, want %v (catalog price of gpt-4o-mini)", r.CostUSD, want)
	}
}

func TestSDKStreamForwardsChunksAndUsage(t *testing.T) {
	fake := &fakeopenai.Server{Record: true, PromptTokens: 50, CompletionTokens: 10, CachedTokens: 20}
	j := start(t, fake, "")
	client := j.sdk(adminKey)
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:         "priced",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	acc := openai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "Hello from the fake upstream. Junction forwarded this." {
		t.Fatalf("content %q", got)
	}
	if chunks < 8 {
		t.Fatalf("only %d chunks: the stream was buffered, not forwarded", chunks)
	}
	if acc.Usage.PromptTokens != 50 || acc.Usage.CompletionTokens != 10 || acc.Usage.PromptTokensDetails.CachedTokens != 20 {
		t.Fatalf("usage %+v", acc.Usage)
	}
	if so, _ := fake.Requests()[0].Body["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Fatal("Junction must always ask the upstream for usage in streams")
	}
	r := j.records(1)[0]
	if !r.Stream || r.TTFTMS == nil || *r.TTFTMS <= 0 || *r.TTFTMS > r.LatencyMS {
		t.Fatalf("stream record %+v", r)
	}
	// Configured price: $1 / $2 per 1K; cached tokens at the input price.
	if want := wantCost(50, 20, 10, 1, 2); r.CostUSD == nil || math.Abs(*r.CostUSD-want) > 1e-12 || r.CachedTokens != 20 {
		t.Fatalf("cost %v, want %v", r.CostUSD, want)
	}
}

func TestSDKStreamWithoutUsageOptionStillAccounts(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, "")
	client := j.sdk(adminKey)
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	for stream.Next() {
		if stream.Current().Usage.TotalTokens != 0 {
			t.Fatal("usage chunk sent to a client that did not ask for it")
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if r := j.records(1)[0]; r.InputTokens != 12 || r.OutputTokens != 9 {
		t.Fatalf("usage not recorded: %+v", r)
	}
}

func weatherTool() openai.ChatCompletionToolUnionParam {
	return openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:        "get_weather",
		Description: openai.String("Current weather for a city"),
		Parameters: shared.FunctionParameters{
			"type":       "object",
			"properties": map[string]any{"city": map[string]any{"type": "string"}},
			"required":   []string{"city"},
		},
	})
}

func TestSDKToolCalls(t *testing.T) {
	fake := &fakeopenai.Server{Record: true}
	j := start(t, fake, "")
	client := j.sdk(adminKey)
	params := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools:    []openai.ChatCompletionToolUnionParam{weatherTool()},
	}
	resp, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	tc := resp.Choices[0].Message.ToolCalls
	if len(tc) != 1 || tc[0].Function.Name != "get_weather" || tc[0].ID != "call_abc123" || resp.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("tool calls %+v", resp.Choices[0])
	}
	var args map[string]string
	if err := json.Unmarshal([]byte(tc[0].Function.Arguments), &args); err != nil || args["city"] != "Paris" {
		t.Fatalf("arguments %q", tc[0].Function.Arguments)
	}
	tools, _ := json.Marshal(fake.Requests()[0].Body["tools"])
	if !strings.Contains(string(tools), `"required":["city"]`) {
		t.Fatalf("tool schema not forwarded: %s", tools)
	}

	// The same, streamed: argument fragments reassemble.
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stc := acc.Choices[0].Message.ToolCalls
	if len(stc) != 1 || stc[0].Function.Arguments != `{"city":"Paris","unit":"celsius"}` || stc[0].Function.Name != "get_weather" {
		t.Fatalf("streamed tool calls %+v", stc)
	}

	// A tool result goes back to the upstream as a tool message.
	params.Messages = append(params.Messages, resp.Choices[0].Message.ToParam(), openai.ToolMessage(`{"temp":21}`, "call_abc123"))
	if _, err := client.Chat.Completions.New(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	msgs := fake.Requests()[2].Body["messages"].([]any)
	last := msgs[len(msgs)-1].(map[string]any)
	if last["role"] != "tool" || last["tool_call_id"] != "call_abc123" || last["content"] != `{"temp":21}` {
		t.Fatalf("tool result sent as %v", last)
	}
}

func TestSDKEmbeddingsAndModels(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, "")
	client := j.sdk(adminKey)
	emb, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "local-llama",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Data) != 2 || emb.Data[1].Embedding[3] != 1.5 || emb.Usage.PromptTokens != 8 {
		t.Fatalf("embeddings %+v", emb)
	}
	page, err := client.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "dead-model,gpt-4o-mini,local-llama,priced" {
		t.Fatalf("models %v", ids)
	}
}

func TestSDKSeesUpstreamErrors(t *testing.T) {
	j := start(t, &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		return fakeopenai.Fault{Status: 429, RetryAfter: "3", Message: "Rate limit reached for gpt-4o-mini"}
	}}, "")
	client := j.sdk(adminKey)
	_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var apiErr *openai.Error
	if !asError(err, &apiErr) || apiErr.StatusCode != 429 || !strings.Contains(apiErr.Message, "Rate limit reached") {
		t.Fatalf("err = %v", err)
	}
}

func asError(err error, target **openai.Error) bool {
	e, ok := err.(*openai.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestUnreachableUpstream(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, "")
	status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"dead-model","messages":[{"role":"user","content":"hi"}]}`)
	if e := decodeError(t, b); status != 502 || !strings.Contains(e.Error.Message, "provider dead") || !strings.Contains(e.Error.Message, "unreachable") {
		t.Fatalf("%d %s", status, b)
	}
	// Any model of a configured provider is reachable as PROVIDER/MODEL.
	if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"openai/gpt-4.1-nano","messages":[{"role":"user","content":"hi"}]}`); status != 200 {
		t.Fatalf("provider/model: %d %s", status, b)
	}
	recs := j.records(2)
	if recs[0].UpstreamModel != "gpt-4.1-nano" || recs[0].CostUSD != nil {
		t.Fatalf("unpriced provider/model record %+v: cost must be unknown, not $0", recs[0])
	}
}
