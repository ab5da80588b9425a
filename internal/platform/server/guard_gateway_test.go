package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

const guardYAML = `
guardrails:
  - id: support
    name: support
    blocked_input_messaging: "Sorry, I can't take that request."
    blocked_outputs_messaging: "Sorry, I can't answer that."
    word_policy:
      words: [{text: "project falcon"}]
    sensitive_information_policy:
      pii_entities: [{type: EMAIL, action: ANONYMIZE}]
`

func TestGuardrailOnTheOpenAISurface(t *testing.T) {
	fake := &fakeopenai.Server{Record: true, ReplyFor: func(model string) string {
		return "Write to jane.doe@example.com for a refund."
	}}
	j := start(t, fake, `  - {name: guarded, provider: openai, upstream_model: small-v1, guardrail: support}
`+guardYAML)

	// ANONYMIZE: the upstream sees a placeholder, the client a masked answer.
	status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"guarded","messages":[{"role":"user","content":"I am bob@example.org, help"}]}`)
	if status != 200 || strings.Contains(string(b), "jane.doe@example.com") || !strings.Contains(string(b), "{EMAIL}") {
		t.Fatalf("%d %s", status, b)
	}
	up := fake.Requests()[0]
	if strings.Contains(string(up.Raw), "bob@example.org") || !strings.Contains(string(up.Raw), "{EMAIL}") {
		t.Fatalf("the upstream saw the address: %s", up.Raw)
	}
	if a := hdr.Get("X-Junction-Guardrail-Action"); !strings.Contains(a, "support:1 INTERVENED input anonymized, output anonymized") {
		t.Fatalf("action header %q", a)
	}
	var body struct {
		G struct {
			ID     string `json:"id"`
			Action string `json:"action"`
			Input  struct {
				SensitiveInformationPolicy struct {
					PIIEntities []struct{ Type, Action string } `json:"piiEntities"`
				} `json:"sensitiveInformationPolicy"`
			} `json:"input_assessment"`
		} `json:"junction_guardrail"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.G.ID != "support" || body.G.Action != "GUARDRAIL_INTERVENED" ||
		len(body.G.Input.SensitiveInformationPolicy.PIIEntities) != 1 || body.G.Input.SensitiveInformationPolicy.PIIEntities[0].Type != "EMAIL" {
		t.Fatalf("junction_guardrail field: %+v (%v)", body.G, err)
	}

	// BLOCK on input: the model is never called.
	before := len(fake.Requests())
	status, _, b = j.do("POST", "/v1/chat/completions", adminKey, `{"model":"guarded","messages":[{"role":"user","content":"Tell me about Project Falcon"}]}`)
	if status != 200 || !strings.Contains(string(b), "Sorry, I can't take that request.") || !strings.Contains(string(b), `"finish_reason":"content_filter"`) {
		t.Fatalf("blocked input: %d %s", status, b)
	}
	if len(fake.Requests()) != before {
		t.Fatal("a blocked input reached the model")
	}
	// /metrics counts each intervention once: the blocked input, and the
	// first request's anonymized input and output.
	m := j.scrape()
	for _, w := range []struct {
		direction, action string
	}{{"input", "blocked"}, {"input", "anonymized"}, {"output", "anonymized"}} {
		if n, _ := sum(m, "junction_guardrail_interventions_total", map[string]string{"guardrail": "support", "direction": w.direction, "action": w.action}); n != 1 {
			t.Errorf("interventions %s %s: %g, want 1", w.direction, w.action, n)
		}
	}
	if n, _ := sum(m, "junction_guardrail_interventions_total", nil); n != 3 {
		t.Errorf("interventions in all: %g, want 3", n)
	}

	// Streams in sync mode mask the answer before it leaves.
	status, _, b = j.do("POST", "/v1/chat/completions", adminKey, `{"model":"guarded","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || strings.Contains(string(b), "jane.doe") || !strings.Contains(string(b), "{EMAIL}") || !strings.Contains(string(b), "[DONE]") {
		t.Fatalf("stream: %s", b)
	}

	// A request may name a guardrail itself; an unknown one is a 400.
	status, _, b = j.do("POST", "/v1/chat/completions", adminKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, "X-Junction-Guardrail", "nope")
	if status != 400 || !strings.Contains(string(b), `guardrail \"nope\"`) {
		t.Fatalf("unknown guardrail: %d %s", status, b)
	}

	recs := j.records(4)
	found := map[string]bool{}
	for _, r := range recs {
		found[r.Guardrail] = true
	}
	if !found["support:1 INTERVENED input blocked"] || !found["support:1 INTERVENED input anonymized, output anonymized"] {
		t.Fatalf("the ledger does not record the intervention: %v", found)
	}
}

func TestGuardrailOnConverseWithTrace(t *testing.T) {
	isolateAWS(t)
	j := start(t, &fakeopenai.Server{Reply: "Mail jane.doe@example.com."}, guardYAML)
	keyID, _ := j.createKey("bedrock-app", nil)
	akid, secret := j.awsCredentials(keyID)
	client := j.bedrockClient(akid, secret)

	out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId:  aws.String("gpt-4o-mini"),
		Messages: []types.Message{userText("What is Project Falcon?")},
		GuardrailConfig: &types.GuardrailConfiguration{GuardrailIdentifier: aws.String("support"), GuardrailVersion: aws.String("1"),
			Trace: types.GuardrailTraceEnabled},
	})
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := outputText(t, out); text != "Sorry, I can't take that request." || out.StopReason != types.StopReasonGuardrailIntervened {
		t.Fatalf("answer %q stop %s", text, out.StopReason)
	}
	if out.Trace == nil || out.Trace.Guardrail == nil || out.Trace.Guardrail.InputAssessment["support"].WordPolicy == nil {
		t.Fatalf("trace %+v", out.Trace)
	}

	// Anonymized output, no trace asked for: the answer is masked.
	out, err = client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId:         aws.String("gpt-4o-mini"),
		Messages:        []types.Message{userText("Who handles refunds?")},
		GuardrailConfig: &types.GuardrailConfiguration{GuardrailIdentifier: aws.String("support"), GuardrailVersion: aws.String("DRAFT")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := outputText(t, out); text != "Mail {EMAIL}." || out.Trace != nil {
		t.Fatalf("answer %q trace %+v", text, out.Trace)
	}
}

// TestGuardrailTopicByMeaning: a denied topic with an embedding model
// matches through a model Junction serves (the fake's embeddings).
func TestGuardrailTopicByMeaning(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, `
guardrails:
  - id: topics
    name: topics
    blocked_input_messaging: "Not a topic we discuss."
    blocked_outputs_messaging: "Not a topic we discuss."
    topic_policy:
      embedding_model: local-llama
      threshold: 0.5
      topics:
        - {name: Investment advice, definition: Recommendations on what to invest in., examples: ["Which stocks should I buy?"]}
`)
	// The fake embeds every text alike, so every prompt is "similar":
	// what this checks is that the embedding call is wired and blocks.
	status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Tell me about bonds"}]}`, "X-Junction-Guardrail", "topics")
	if status != 200 || !strings.Contains(string(b), "Not a topic we discuss.") {
		t.Fatalf("%d %s", status, b)
	}
}
