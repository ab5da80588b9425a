package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/tokens"
)

// TestSDKCountTokens: the Anthropic SDK's Messages.CountTokens is
// answered offline, exactly for a model served by an OpenAI model (its
// tokenizer is known) and as an estimate for a Claude model; nothing
// reaches the upstream, and an unknown model is Anthropic's 404.
func TestSDKCountTokens(t *testing.T) {
	fake := &fakeopenai.Server{Record: true}
	j := start(t, fake, `  - {name: haiku, provider: openai, upstream_model: claude-3-5-haiku-20241022}`)
	client := j.claude(adminKey)
	params := func(model string) anthropic.MessageCountTokensParams {
		return anthropic.MessageCountTokensParams{
			Model:    anthropic.Model(model),
			System:   anthropic.MessageCountTokensParamsSystemUnion{OfString: anthropic.String("Be brief.")},
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello world, how are you today?"))},
		}
	}

	var resp *http.Response
	got, err := client.Messages.CountTokens(context.Background(), params("gpt-4o-mini"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	// OpenAI's chat accounting: 3 to prime the reply, 3 + 1 (role) per
	// message, and the texts in gpt-4o's o200k encoding.
	const upstream = "gpt-4o-mini-2024-07-18"
	want := 3 + 2*4 + tokens.Count(upstream, "Be brief.") + tokens.Count(upstream, "Hello world, how are you today?")
	if got.InputTokens != int64(want) || resp.Header.Get("X-Junction-Token-Count") != "exact" {
		t.Fatalf("gpt-4o-mini: %d tokens (%s), want %d exact", got.InputTokens, resp.Header.Get("X-Junction-Token-Count"), want)
	}

	got, err = client.Messages.CountTokens(context.Background(), params("haiku"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if got.InputTokens < int64(want) || resp.Header.Get("X-Junction-Token-Count") != "estimate" {
		t.Fatalf("haiku: %d tokens (%s), want an estimate of at least %d", got.InputTokens, resp.Header.Get("X-Junction-Token-Count"), want)
	}

	_, err = client.Messages.CountTokens(context.Background(), params("no-such-model"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Type() != "not_found_error" {
		t.Fatalf("unknown model: %v", err)
	}
	if status, _, b := j.do("POST", "/v1/messages/count_tokens", adminKey, `{"model":"gpt-4o-mini"}`); status != http.StatusBadRequest {
		t.Fatalf("no messages: %d %s", status, b)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("counting sent %d requests upstream", n)
	}
}
