package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// TestSDKModelsGet: the OpenAI SDK's Models.Get retrieves a configured
// model, a model whose name holds a slash and a route, each as OpenAI's
// model object, and an unknown id is OpenAI's 404 model_not_found.
func TestSDKModelsGet(t *testing.T) {
	j := startWith(t, &fakeopenai.Server{}, `routes:
  - {name: chat-pool, deployments: [{model: gpt-4o-mini}, {model: local-llama}]}`,
		`  - {name: meta/llama-3.1-8b, provider: openai, upstream_model: llama-3.1-8b}`)
	client := j.sdk(adminKey)
	for _, want := range []struct{ id, owner string }{
		{"gpt-4o-mini", "openai"},
		{"meta/llama-3.1-8b", "openai"},
		{"chat-pool", "junction-route"},
	} {
		m, err := client.Models.Get(context.Background(), want.id)
		if err != nil {
			t.Fatalf("%s: %v", want.id, err)
		}
		if m.ID != want.id || m.Object != "model" || m.OwnedBy != want.owner {
			t.Fatalf("%s: got %+v", want.id, m)
		}
	}

	_, err := client.Models.Get(context.Background(), "gpt-5-nope")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != "model_not_found" ||
		apiErr.Type != "invalid_request_error" || !strings.Contains(apiErr.Message, "gpt-5-nope") {
		t.Fatalf("unknown model: %v", err)
	}
	// Without a key the model is not revealed.
	if status, _, _ := j.do("GET", "/v1/models/gpt-4o-mini", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("without a key: %d", status)
	}
}
