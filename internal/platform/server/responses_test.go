package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/junctionhq/junction/internal/testkit/fakebedrock"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

func respWeatherTool() responses.ToolUnionParam {
	return responses.ToolParamOfFunction("get_weather", map[string]any{
		"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"},
	}, false)
}

func toolOutput(callID, output string) responses.ResponseInputItemUnionParam {
	return responses.ResponseInputItemUnionParam{OfFunctionCallOutput: &responses.ResponseInputItemFunctionCallOutputParam{
		CallID: openai.String(callID), Output: responses.ResponseInputItemFunctionCallOutputOutputUnionParam{OfString: openai.String(output)}}}
}

// respStream is what a Responses stream delivered.
type respStream struct {
	types     []string
	text      string
	args      string
	final     responses.Response
	errorType string
}

func readResponseStream(t *testing.T, client openai.Client, params responses.ResponseNewParams) respStream {
	t.Helper()
	stream := client.Responses.NewStreaming(context.Background(), params)
	var s respStream
	seq := int64(-1)
	for stream.Next() {
		ev := stream.Current()
		if ev.SequenceNumber != seq+1 {
			t.Fatalf("event %s has sequence_number %d after %d", ev.Type, ev.SequenceNumber, seq)
		}
		seq = ev.SequenceNumber
		s.types = append(s.types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			s.text += ev.Delta
		case "response.function_call_arguments.delta":
			s.args += ev.Delta
		case "response.completed", "response.incomplete":
			s.final = ev.Response
		case "error":
			s.errorType = ev.Code
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestResponsesSDKOverOpenAI drives /v1/responses with the official SDK's
// Responses client: plain, respStream, function calling continued with
// previous_response_id, and the stored response read, listed and deleted.
func TestResponsesSDKOverOpenAI(t *testing.T) {
	fake := &fakeopenai.Server{Record: true, PromptTokens: 40, CompletionTokens: 9}
	j := start(t, fake, "")
	client := j.sdk(adminKey)
	ctx := context.Background()

	resp, err := client.Responses.New(ctx, responses.ResponseNewParams{
		Model: "priced", Instructions: openai.String("Be brief."),
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello")},
		MaxOutputTokens: openai.Int(50),
		Metadata:        shared.Metadata{"app": "faq"},
		Reasoning:       shared.ReasoningParam{Effort: shared.ReasoningEffortLow},
		Text: responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigParamOfJSONSchema("greeting",
			map[string]any{"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}})},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != "Hello from the fake upstream. Junction forwarded this." || resp.Status != "completed" || resp.Model != "priced" {
		t.Fatalf("response %+v", resp)
	}
	if !strings.HasPrefix(resp.ID, "resp_") || resp.Usage.InputTokens != 40 || resp.Usage.OutputTokens != 9 || resp.Usage.TotalTokens != 49 {
		t.Fatalf("id %q usage %+v", resp.ID, resp.Usage)
	}
	if resp.Metadata["app"] != "faq" || resp.Instructions.OfString != "Be brief." || !strings.Contains(resp.RawJSON(), `"store":true`) {
		t.Fatalf("echoed settings: metadata %v instructions %+v", resp.Metadata, resp.Instructions)
	}
	up := fake.Requests()[0]
	msgs := up.Body["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["role"] != "system" || msgs[0].(map[string]any)["content"] != "Be brief." {
		t.Fatalf("upstream messages: %s", up.Raw)
	}
	rf, _ := up.Body["response_format"].(map[string]any)
	if rf["type"] != "json_schema" || rf["json_schema"].(map[string]any)["name"] != "greeting" {
		t.Fatalf("text.format must become response_format: %s", up.Raw)
	}
	if up.Body["reasoning_effort"] != "low" || up.Body["max_tokens"] != float64(50) || up.Body["metadata"] != nil || up.Body["store"] != nil {
		t.Fatalf("upstream body %s", up.Raw)
	}
	r := j.records(1)[0]
	if r.Surface != "openai" || r.Model != "priced" || r.InputTokens != 40 || r.OutputTokens != 9 || r.Status != 200 {
		t.Fatalf("record %+v", r)
	}
	if want := wantCost(40, 0, 9, 1, 2); r.CostUSD == nil || math.Abs(*r.CostUSD-want) > 1e-12 {
		t.Fatalf("cost %v, want %v", r.CostUSD, want)
	}

	// Streamed: the typed events in order, numbered, the text in deltas.
	s := readResponseStream(t, client, responses.ResponseNewParams{Model: "priced",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello")}})
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"}
	if strings.Join(s.types[:4], ",") != strings.Join(want, ",") {
		t.Fatalf("stream opened with %v", s.types)
	}
	tail := []string{"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"}
	if strings.Join(s.types[len(s.types)-4:], ",") != strings.Join(tail, ",") {
		t.Fatalf("stream ended with %v", s.types)
	}
	if s.text != "Hello from the fake upstream. Junction forwarded this." || s.final.OutputText() != s.text || s.final.Usage.InputTokens != 40 {
		t.Fatalf("respStream text %q final %+v", s.text, s.final)
	}
	recs := j.records(2)
	sr := recs[0] // newest first
	if !sr.Stream || sr.OutputTokens != 9 || sr.TTFTMS == nil || recs[1].Stream {
		t.Fatalf("stream record %+v", sr)
	}

	// Function calling: the model calls get_weather; the tool's output goes
	// back with previous_response_id, and the upstream sees the whole turn.
	call, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Weather in Paris?")}, Tools: []responses.ToolUnionParam{respWeatherTool()}})
	if err != nil {
		t.Fatal(err)
	}
	fc := call.Output[0]
	if len(call.Output) != 1 || fc.Type != "function_call" || fc.Name != "get_weather" || fc.CallID != "call_abc123" || fc.Arguments.OfString != `{"city":"Paris","unit":"celsius"}` {
		t.Fatalf("output %+v", call.Output)
	}
	tools := fake.Requests()[2].Body["tools"].([]any)
	if fn := tools[0].(map[string]any)["function"].(map[string]any); fn["name"] != "get_weather" {
		t.Fatalf("upstream tools %v", tools)
	}
	next, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", PreviousResponseID: openai.String(call.ID),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{toolOutput(fc.CallID, "18C and sunny")}}})
	if err != nil {
		t.Fatal(err)
	}
	if next.OutputText() == "" || next.PreviousResponseID != call.ID {
		t.Fatalf("continued response %+v", next)
	}
	var turn []map[string]any
	raw, _ := json.Marshal(fake.Requests()[3].Body["messages"])
	json.Unmarshal(raw, &turn)
	if len(turn) != 3 || turn[0]["content"] != "Weather in Paris?" || turn[1]["tool_calls"] == nil || turn[2]["role"] != "tool" ||
		turn[2]["tool_call_id"] != "call_abc123" || turn[2]["content"] != "18C and sunny" {
		t.Fatalf("upstream saw the conversation %s", raw)
	}

	// Stored: read back, its input listed, deleted.
	got, err := client.Responses.Get(ctx, next.ID, responses.ResponseGetParams{})
	if err != nil || got.OutputText() != next.OutputText() {
		t.Fatalf("get: %v %+v", err, got)
	}
	page, err := client.Responses.InputItems.List(ctx, next.ID, responses.InputItemListParams{})
	if err != nil || len(page.Data) != 1 || page.Data[0].Type != "function_call_output" || page.Data[0].CallID != "call_abc123" {
		t.Fatalf("input items: %v %+v", err, page)
	}
	if err := client.Responses.Delete(ctx, next.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Responses.Get(ctx, next.ID, responses.ResponseGetParams{}); !isStatus(err, 404) {
		t.Fatalf("deleted response: %v", err)
	}
}

func isStatus(err error, status int) bool {
	var e *openai.Error
	return err != nil && errors.As(err, &e) && e.StatusCode == status
}

// TestResponsesStoreIsPerKey: one key cannot read, continue or delete
// another's responses; store false stores nothing.
func TestResponsesStoreIsPerKey(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, "")
	_, a := j.createKey("a", nil)
	_, b := j.createKey("b", nil)
	ctx := context.Background()
	input := responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}
	owner := j.sdk(a)
	resp, err := owner.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", Input: input})
	if err != nil {
		t.Fatal(err)
	}
	other := j.sdk(b)
	if _, err := other.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{}); !isStatus(err, 404) {
		t.Fatalf("another key read the response: %v", err)
	}
	if err := other.Responses.Delete(ctx, resp.ID); !isStatus(err, 404) {
		t.Fatalf("another key deleted the response: %v", err)
	}
	_, err = other.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", Input: input, PreviousResponseID: openai.String(resp.ID)})
	if e := new(openai.Error); !errors.As(err, &e) || e.StatusCode != 400 || e.Param != "previous_response_id" {
		t.Fatalf("another key continued the response: %v", err)
	}
	unstored, err := owner.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", Input: input, Store: openai.Bool(false)})
	if err != nil || !strings.Contains(unstored.RawJSON(), `"store":false`) {
		t.Fatalf("store false: %v %+v", err, unstored)
	}
	if _, err := owner.Responses.Get(ctx, unstored.ID, responses.ResponseGetParams{}); !isStatus(err, 404) {
		t.Fatalf("an unstored response was kept: %v", err)
	}
	if _, err := owner.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{}); err != nil {
		t.Fatalf("the owner cannot read its response: %v", err)
	}
}

// TestResponsesOverAnthropic: a Responses client in front of Anthropic,
// with a tool call respStream after text, and a plain call.
func TestResponsesOverAnthropic(t *testing.T) {
	up, got := fakeAnthropic(t, "tool_use_response.json", "stream_tool_use.sse")
	j := startWith(t, &fakeopenai.Server{},
		fmt.Sprintf(`  - {name: claude, type: anthropic, base_url: %q, api_key: "ak-upstream"}`, up.URL),
		`  - {name: sonnet, provider: claude, upstream_model: claude-sonnet-4-5, price: {input_per_1k: 0.003, output_per_1k: 0.015}}`)
	client := j.sdk(adminKey)
	params := responses.ResponseNewParams{Model: "sonnet", Instructions: openai.String("You are Claude."),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Weather?")}, Tools: []responses.ToolUnionParam{respWeatherTool()}}
	resp, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Output) != 3 || resp.Output[0].Type != "message" || resp.Output[1].Name != "get_weather" || resp.Output[2].Name != "get_time" {
		t.Fatalf("output %+v", resp.Output)
	}
	if (*got)[0]["system"] != "You are Claude." || (*got)[0]["tools"] == nil {
		t.Fatalf("upstream body %v", (*got)[0])
	}
	s := readResponseStream(t, client, params)
	if s.text == "" || s.args == "" || len(s.final.Output) < 2 || s.final.Output[len(s.final.Output)-1].Type != "function_call" {
		t.Fatalf("stream text %q args %q final %+v (%v)", s.text, s.args, s.final.Output, s.types)
	}
	if !strings.Contains(strings.Join(s.types, ","), "response.function_call_arguments.done") {
		t.Fatalf("events %v", s.types)
	}
}

// TestResponsesOverBedrock: a Responses client in front of Bedrock's
// Converse, plain and respStream with a tool call.
func TestResponsesOverBedrock(t *testing.T) {
	j := startBedrockUpstream(t, &fakebedrock.Server{Usage: fakebedrock.Usage{InputTokens: 100, OutputTokens: 20}})
	client := j.sdk(adminKey)
	resp, err := client.Responses.New(context.Background(), responses.ResponseNewParams{Model: "claude",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello")}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != fakebedrock.DefaultText || resp.Usage.InputTokens != 100 || resp.Usage.OutputTokens != 20 {
		t.Fatalf("response %+v", resp)
	}
	s := readResponseStream(t, client, responses.ResponseNewParams{Model: "claude",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Weather?")}, Tools: []responses.ToolUnionParam{respWeatherTool()}})
	if s.args != fakebedrock.ToolInput || s.final.Output[0].Type != "function_call" || s.final.Output[0].Name != "get_weather" {
		t.Fatalf("stream args %q final %+v", s.args, s.final.Output)
	}
}

// TestResponsesBadInput: each mistake is a 400 naming the field.
func TestResponsesBadInput(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, "")
	for _, tc := range []struct{ body, param string }{
		{`{"input":"hi"}`, "model"},
		{`{"model":"gpt-4o-mini"}`, "input"},
		{`{"model":"gpt-4o-mini","input":[{"type":"function_call_output","output":"x"}]}`, "input[0].call_id"},
		{`{"model":"gpt-4o-mini","input":[{"role":"robot","content":"x"}]}`, "input[0].role"},
		{`{"model":"gpt-4o-mini","input":"hi","tools":[{"type":"web_search"}]}`, "tools[0].type"},
		{`{"model":"gpt-4o-mini","input":"hi","text":{"format":{"type":"json_schema"}}}`, "text.format"},
		{`{"model":"gpt-4o-mini","input":"hi","max_output_tokens":0}`, "max_output_tokens"},
		{`{"model":"gpt-4o-mini","input":"hi","previous_response_id":"resp_nope"}`, "previous_response_id"},
	} {
		status, _, b := j.do("POST", "/v1/responses", adminKey, tc.body)
		if e := decodeError(t, b); status != http.StatusBadRequest || e.Error.Param == nil || *e.Error.Param != tc.param {
			t.Errorf("%s: status %d, error %+v; want 400 naming %s", tc.body, status, e.Error, tc.param)
		}
	}
	// Every refused request is recorded once.
	if n := len(j.records(8)); n != 8 {
		t.Fatalf("%d records", n)
	}
}

// TestResponsesStreamFailureIsReported: a stream that breaks ends with an
// error event, never with response.completed.
func TestResponsesStreamFailureIsReported(t *testing.T) {
	j := start(t, &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { return fakeopenai.Fault{ErrorAfter: 2} }}, "")
	s := readResponseStream(t, j.sdk(adminKey), responses.ResponseNewParams{Model: "gpt-4o-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	last := s.types[len(s.types)-1]
	if last != "error" || s.errorType == "" || strings.Contains(strings.Join(s.types, ","), "response.completed") {
		t.Fatalf("events %v (code %q)", s.types, s.errorType)
	}
	if r := j.records(1)[0]; r.Status < 500 {
		t.Fatalf("record %+v", r)
	}
}
