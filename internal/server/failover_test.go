package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/junctionhq/junction/internal/fakeopenai"
	"github.com/junctionhq/junction/internal/fakeupstream"
)

// Failover and streams, end to end: each test names a misbehaving model
// of internal/fakeupstream (the model name is the fault) behind a route,
// and talks to Junction with the official SDK.

// startFaulty starts Junction with provider "faulty" (OpenAI wire) and
// "faultyclaude" (Anthropic wire), both served by fake, plus the given
// models (YAML list items) and the rest of the config after them.
func startFaulty(t *testing.T, fake *fakeupstream.Server, models, rest string) *junction {
	t.Helper()
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	return startWith(t, &fakeopenai.Server{},
		fmt.Sprintf(`  - {name: faulty, type: openai, base_url: "%s/v1"}
  - {name: faultyclaude, type: anthropic, base_url: "%s", api_key: "sk-ant"}`, up.URL, up.URL),
		models+"\n"+rest)
}

// streamText reads a whole stream with the SDK: its text, the model its
// chunks named, and the stream's error.
func streamText(client openai.Client, model string, opts ...option.RequestOption) (text, served string, finish string, err error) {
	s := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me about the fox.")},
	}, opts...)
	var b strings.Builder
	for s.Next() {
		ch := s.Current()
		served = ch.Model
		for _, c := range ch.Choices {
			b.WriteString(c.Delta.Content)
			if c.FinishReason != "" {
				finish = c.FinishReason
			}
		}
	}
	return b.String(), served, finish, s.Err()
}

func TestServedModelIsNamedOnEverySurface(t *testing.T) {
	fake := &fakeupstream.Server{}
	j := startFaulty(t, fake, `  - {name: broken, provider: faulty, upstream_model: "503"}
  - {name: spare, provider: faulty, upstream_model: spare-model}`, `routes:
  - {name: chat, deployments: [{model: broken}], fallbacks: [spare]}
router: {retry_backoff: 1ms}`)
	client := j.sdk(adminKey)
	var hdr *http.Response
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}, option.WithResponseInto(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "spare" || hdr.Header.Get("X-Junction-Requested-Model") != "chat" || hdr.Header.Get("X-Junction-Served-Model") != "spare" {
		t.Fatalf("plain: model %q, headers %v", resp.Model, hdr.Header)
	}
	text, served, _, err := streamText(client, "chat")
	if err != nil || text != fakeupstream.DefaultReply || served != "spare" {
		t.Fatalf("stream: %q served by %q, %v", text, served, err)
	}
	claude := j.claude(adminKey)
	msg, err := claude.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "chat", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	if err != nil || string(msg.Model) != "spare" {
		t.Fatalf("anthropic: %v %v", msg, err)
	}
	st := claude.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "chat", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	var acc anthropic.Message
	for st.Next() {
		acc.Accumulate(st.Current())
	}
	if st.Err() != nil || string(acc.Model) != "spare" {
		t.Fatalf("anthropic stream: model %q, %v", acc.Model, st.Err())
	}
}
