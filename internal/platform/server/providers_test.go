package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/junctionhq/junction/internal/testkit/fakeazure"
	"github.com/junctionhq/junction/internal/testkit/fakegemini"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

func startGemini(t *testing.T) (*junction, *fakegemini.Server) {
	t.Helper()
	fake := &fakegemini.Server{Key: "gk-upstream", Prompt: 30, Output: 12}
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	j := startWith(t, &fakeopenai.Server{},
		fmt.Sprintf(`  - {name: google, type: gemini, base_url: "%s/v1beta", api_key: gk-upstream}`, up.URL),
		`  - {name: flash, provider: google, upstream_model: gemini-2.5-flash}`)
	return j, fake
}

// TestGeminiProvider: chat completions and the Responses API in front of
// Gemini's generateContent and streamGenerateContent: system instruction,
// tools both ways, usage, catalog price, safety blocks as refusals.
func TestGeminiProvider(t *testing.T) {
	j, fake := startGemini(t)
	client := j.sdk(adminKey)
	ctx := context.Background()
	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "flash",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Say hello")}, MaxTokens: openai.Int(40)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != fakegemini.Text || resp.Usage.PromptTokens != 30 || resp.Usage.CompletionTokens != 12 {
		t.Fatalf("response %+v", resp)
	}
	up := fake.Requests()[0]
	si := up.Body["systemInstruction"].(map[string]any)["parts"].([]any)[0].(map[string]any)
	gc := up.Body["generationConfig"].(map[string]any)
	if up.Model != "gemini-2.5-flash" || up.Method != "generateContent" || si["text"] != "Be brief." || gc["maxOutputTokens"] != float64(40) {
		t.Fatalf("upstream request %s %s %s", up.Model, up.Method, up.Raw)
	}
	if r := j.records(1)[0]; r.Provider != "google" || r.CostUSD == nil || *r.CostUSD <= 0 {
		t.Fatalf("record %+v: want the catalog's Gemini price", r)
	}

	// Streamed, through the Responses API.
	s := readResponseStream(t, client, responses.ResponseNewParams{Model: "flash",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello")}})
	if s.text != fakegemini.Text || s.final.Usage.OutputTokens != 12 || fake.Requests()[1].Method != "streamGenerateContent" {
		t.Fatalf("stream text %q final %+v", s.text, s.final)
	}

	// A function call, and its result sent back by name.
	call, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "flash",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Weather?")}, Tools: []responses.ToolUnionParam{respWeatherTool()}})
	if err != nil {
		t.Fatal(err)
	}
	fc := call.Output[0]
	if fc.Type != "function_call" || fc.Name != "get_weather" || fc.Arguments.OfString != fakegemini.Args {
		t.Fatalf("output %+v", call.Output)
	}
	decl := fake.Requests()[2].Body["tools"].([]any)[0].(map[string]any)["functionDeclarations"].([]any)[0].(map[string]any)
	if decl["name"] != "get_weather" || decl["parametersJsonSchema"] == nil {
		t.Fatalf("tools sent %s", fake.Requests()[2].Raw)
	}
	if _, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "flash", PreviousResponseID: openai.String(call.ID),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{toolOutput(fc.CallID, `{"temp":18}`)}}}); err != nil {
		t.Fatal(err)
	}
	raw := string(fake.Requests()[3].Raw)
	if !strings.Contains(raw, `"functionCall":{"id":"`+fc.CallID+`","name":"get_weather"`) ||
		!strings.Contains(raw, `"functionResponse":{"id":"`+fc.CallID+`","name":"get_weather","response":{"temp":18}}`) {
		t.Fatalf("the tool round trip reached Gemini as %s", raw)
	}

	// Safety blocks, of the prompt and of the answer, are refusals.
	for _, word := range []string{fakegemini.BlockPrompt, fakegemini.BlockAnswer} {
		r, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "flash",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(word)}})
		if err != nil || r.Choices[0].FinishReason != "content_filter" {
			t.Fatalf("%s: %v %+v", word, err, r)
		}
		st := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "flash",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(word)}})
		finish := ""
		for st.Next() {
			if ch := st.Current().Choices; len(ch) > 0 && ch[0].FinishReason != "" {
				finish = ch[0].FinishReason
			}
		}
		if st.Err() != nil || finish != "content_filter" {
			t.Fatalf("%s streamed: %v finish %q", word, st.Err(), finish)
		}
	}
}

// TestAzureProvider: chat in front of Azure OpenAI: the deployment in the
// URL, api-version, the api-key header or a bearer token, streams with
// Azure's prompt-filter chunk, tool calls, and its content-filter error
// mapped to a content-policy refusal.
func TestAzureProvider(t *testing.T) {
	fake := &fakeazure.Server{Chat: &fakeopenai.Server{PromptTokens: 20, CompletionTokens: 5}, Key: "az-key"}
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	j := startWith(t, &fakeopenai.Server{}, fmt.Sprintf(`
  - {name: az, type: azure, base_url: %q, api_key: az-key}
  - {name: az-entra, type: azure, base_url: %q, api_key: az-key, auth: bearer, api_version: 2025-04-01-preview}`, up.URL, up.URL),
		`  - {name: azure-mini, provider: az, upstream_model: gpt-4o-mini}
  - {name: azure-entra, provider: az-entra, upstream_model: my-deployment}`)
	client := j.sdk(adminKey)
	ctx := context.Background()
	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "azure-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")}})
	if err != nil || resp.Choices[0].Message.Content != "Hello from the fake upstream. Junction forwarded this." {
		t.Fatalf("%v %+v", err, resp)
	}
	st := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "azure-entra",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")}})
	acc := openai.ChatCompletionAccumulator{}
	for st.Next() {
		acc.AddChunk(st.Current())
	}
	if st.Err() != nil || acc.Choices[0].Message.Content != "Hello from the fake upstream. Junction forwarded this." {
		t.Fatalf("stream: %v %+v", st.Err(), acc)
	}
	got := fake.Requests()
	if got[0].Deployment != "gpt-4o-mini" || got[0].APIVersion != "2024-10-21" || got[0].APIKey != "az-key" {
		t.Fatalf("api-key call %+v", got[0])
	}
	if got[1].Deployment != "my-deployment" || got[1].APIVersion != "2025-04-01-preview" || got[1].Bearer != "az-key" || got[1].APIKey != "" {
		t.Fatalf("bearer call %+v", got[1])
	}
	calls, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "azure-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather?")}, Tools: []openai.ChatCompletionToolUnionParam{weatherTool()}})
	if err != nil || len(calls.Choices[0].Message.ToolCalls) != 1 || calls.Choices[0].Message.ToolCalls[0].Function.Name != "get_weather" {
		t.Fatalf("tool call: %v %+v", err, calls)
	}
	if r := j.records(3)[0]; r.CostUSD == nil || *r.CostUSD <= 0 {
		t.Fatalf("record %+v: a deployment named for its model takes the model's catalog price", r)
	}
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "azure-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fakeazure.Flagged)}})
	var e *openai.Error
	if !errors.As(err, &e) || e.StatusCode != 400 || e.Type != "content_policy_violation" || !strings.Contains(e.Message, "content management policy") {
		t.Fatalf("content filter: %v", err)
	}
}
