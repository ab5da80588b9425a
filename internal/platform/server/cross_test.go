package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/openai/openai-go/v3"

	"github.com/junctionhq/junction/internal/testkit/fakebedrock"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// The pairs the other end-to-end files leave out: every client surface in
// front of every kind of upstream. Here, the OpenAI and Anthropic clients
// over Bedrock, and the Bedrock client over Anthropic.

func TestOpenAISDKOverBedrockUpstream(t *testing.T) {
	fake := &fakebedrock.Server{Usage: fakebedrock.Usage{InputTokens: 100, OutputTokens: 20, CacheReadInputTokens: 50}}
	j := startBedrockUpstream(t, fake)
	client := j.sdk(adminKey)
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "claude",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Say hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != fakebedrock.DefaultText || resp.Choices[0].FinishReason != "stop" {
		t.Fatalf("%+v", resp.Choices[0])
	}
	// Bedrock's inputTokens excludes cache reads; OpenAI's prompt_tokens includes them.
	if resp.Usage.PromptTokens != 150 || resp.Usage.PromptTokensDetails.CachedTokens != 50 || resp.Usage.CompletionTokens != 20 {
		t.Fatalf("usage %+v", resp.Usage)
	}

	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:    "claude",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools:    []openai.ChatCompletionToolUnionParam{weatherTool()},
	})
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	tc := acc.Choices[0].Message.ToolCalls
	if len(tc) != 1 || tc[0].Function.Arguments != fakebedrock.ToolInput || acc.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("streamed tool calls %+v finish %q", tc, acc.Choices[0].FinishReason)
	}
	recs := j.records(2)
	for _, r := range recs {
		if r.Surface != "openai" || r.Provider != "aws" || r.InputTokens != 150 || r.CachedTokens != 50 || r.CostUSD == nil {
			t.Fatalf("record %+v", r)
		}
	}
}

func TestAnthropicSDKOverBedrockUpstream(t *testing.T) {
	j := startBedrockUpstream(t, &fakebedrock.Server{Usage: fakebedrock.Usage{InputTokens: 40, OutputTokens: 12}})
	client := j.claude(adminKey)
	msg, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text != fakebedrock.DefaultText || msg.Usage.InputTokens != 40 || msg.Usage.OutputTokens != 12 {
		t.Fatalf("%+v", msg)
	}
	stream := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "claude", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris?"))},
		Tools:    []anthropic.ToolUnionParam{weatherToolParam()},
	})
	acc := anthropic.Message{}
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	var input string
	for _, b := range acc.Content {
		if b.Type == "tool_use" {
			input = string(b.Input)
		}
	}
	if input != fakebedrock.ToolInput || acc.StopReason != anthropic.StopReasonToolUse {
		t.Fatalf("accumulated %+v", acc)
	}
	if recs := j.records(2); recs[0].Surface != "anthropic" || recs[0].Provider != "aws" {
		t.Fatalf("%+v", recs[0])
	}
}

func TestBedrockSDKOverAnthropicUpstream(t *testing.T) {
	isolateAWS(t)
	up, got := fakeAnthropic(t, "messages_response.json", "stream_text.sse")
	j := startWith(t, &fakeopenai.Server{},
		fmt.Sprintf(`  - {name: claude-direct, type: anthropic, base_url: %q, api_key: "ak-upstream"}`, up.URL),
		`  - {name: sonnet, provider: claude-direct, upstream_model: claude-sonnet-4-5}`)
	keyID, _ := j.createKey("bedrock-app", nil)
	akid, secret := j.awsCredentials(keyID)
	client := j.bedrockClient(akid, secret)
	out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId: aws.String("sonnet"), Messages: []types.Message{userText("Hello")},
		System: []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "You are Claude."}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The golden Anthropic answer: 21 input, 2000 cache reads, 1000 cache writes, 393 output.
	if text, _ := outputText(t, out); text != "Hi! My name is Claude." || !usageIs(out.Usage, 21, 393, 21+1000+2000+393, 2000, 1000) {
		t.Fatalf("answer %q usage %+v", text, out.Usage)
	}
	if (*got)[0]["system"] != "You are Claude." {
		t.Fatalf("upstream body %v", (*got)[0])
	}
	sout, err := client.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("sonnet"), Messages: []types.Message{userText("Hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := readStream(t, sout)
	if s.err != nil || s.text != "Hello!" || s.stop != types.StopReasonEndTurn {
		t.Fatalf("stream %+v", s)
	}
	if recs := j.records(2); recs[0].Surface != "bedrock" || recs[0].Provider != "claude-direct" {
		t.Fatalf("%+v", recs[0])
	}
}
