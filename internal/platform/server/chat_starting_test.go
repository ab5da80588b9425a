package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
)

// A chat call to an endpoint that exists but cannot route yet (its model
// server is still starting) is told to retry, with the endpoint's 503,
// never that the model does not exist; once the endpoint is in service
// the same call is answered.
func TestChatToAnEndpointStillStartingIsRetryableNotUnknown(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	j.model("lm", demoArtifact(t), "openai", map[string]string{modelserver.EnvStartupDelay: "2s"})
	j.endpointConfig("lm-c", hosting.Variant{Name: "primary", Model: "lm", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "lm", "config": "lm-c"}, http.StatusCreated, nil)

	body := `{"model":"lm","messages":[{"role":"user","content":"the keeper climbs"}],"max_tokens":4}`
	retried := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, body)
		if status == http.StatusOK {
			break
		}
		if status != http.StatusServiceUnavailable || !strings.Contains(string(b), "lm") {
			t.Fatalf("a chat call while the endpoint starts got %d %v %s; want 503 naming the endpoint", status, hdr, b)
		}
		retried++
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint did not answer within 30 s (%d calls told to retry)", retried)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if retried == 0 {
		t.Fatal("no call was made while the endpoint was starting (its server starts after 2 s): the test proved nothing")
	}
}
