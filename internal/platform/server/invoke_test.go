package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

const fakeReply = "Hello from the fake upstream. Junction forwarded this."

// invokeStream reads an InvokeModelWithResponseStream answer: each
// chunk's bytes decoded as JSON.
func invokeStream(t *testing.T, client *bedrockruntime.Client, model, body string) []map[string]any {
	t.Helper()
	out, err := client.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String(model), Body: []byte(body), ContentType: aws.String("application/json")})
	if err != nil {
		t.Fatal(err)
	}
	st := out.GetStream()
	defer st.Close()
	var chunks []map[string]any
	for ev := range st.Events() {
		c, ok := ev.(*types.ResponseStreamMemberChunk)
		if !ok {
			t.Fatalf("event %T", ev)
		}
		var m map[string]any
		if err := json.Unmarshal(c.Value.Bytes, &m); err != nil {
			t.Fatalf("chunk %q: %v", c.Value.Bytes, err)
		}
		chunks = append(chunks, m)
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	return chunks
}

// TestInvokeModelAnthropicBody: the AWS SDK's InvokeModel with an
// Anthropic-on-Bedrock body, answered by an OpenAI upstream, plain and
// streamed, over HTTP/1.1 and over HTTP/2 with prior knowledge.
func TestInvokeModelAnthropicBody(t *testing.T) {
	isolateAWS(t)
	fake := &fakeopenai.Server{Record: true, PromptTokens: 50, CompletionTokens: 10}
	j := start(t, fake, bedrockModels)
	keyID, _ := j.createKey("invoker", map[string]string{"team": "ml"})
	akid, secret := j.awsCredentials(keyID)
	const body = `{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"system":"Be brief.",
		"messages":[{"role":"user","content":[{"type":"text","text":"Say hello"}]}]}`
	for _, tc := range []struct {
		name   string
		client *bedrockruntime.Client
	}{
		{"http1", j.bedrockClient(akid, secret)},
		{"h2c", j.bedrockClient(akid, secret, func(o *bedrockruntime.Options) { o.HTTPClient = h2cClient() })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.client.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{
				ModelId: aws.String(claudeID), Body: []byte(body), ContentType: aws.String("application/json")})
			if err != nil {
				t.Fatal(err)
			}
			var msg struct {
				Type    string
				Role    string
				Content []struct{ Type, Text string }
				Usage   struct {
					InputTokens  int `json:"input_tokens"`
					OutputTokens int `json:"output_tokens"`
				}
				StopReason string `json:"stop_reason"`
			}
			if err := json.Unmarshal(out.Body, &msg); err != nil {
				t.Fatal(err)
			}
			if msg.Type != "message" || msg.Role != "assistant" || len(msg.Content) != 1 || msg.Content[0].Text != fakeReply ||
				msg.StopReason != "end_turn" || msg.Usage.InputTokens != 50 || msg.Usage.OutputTokens != 10 {
				t.Fatalf("InvokeModel body %s", out.Body)
			}
			chunks := invokeStream(t, tc.client, claudeID, body)
			var types []string
			var text strings.Builder
			for _, c := range chunks {
				types = append(types, c["type"].(string))
				if d, ok := c["delta"].(map[string]any); ok && d["type"] == "text_delta" {
					text.WriteString(d["text"].(string))
				}
			}
			if types[0] != "message_start" || types[len(types)-1] != "message_stop" || text.String() != fakeReply {
				t.Fatalf("chunks %v text %q", types, text.String())
			}
			m, _ := chunks[len(chunks)-1]["amazon-bedrock-invocationMetrics"].(map[string]any)
			if m["inputTokenCount"] != float64(50) || m["outputTokenCount"] != float64(10) {
				t.Fatalf("invocation metrics %v", chunks[len(chunks)-1])
			}
		})
	}
	// The upstream got the system prompt and the message; each call was
	// recorded for the key that signed it.
	up := fake.Requests()[0]
	if msgs := up.Body["messages"].([]any); len(msgs) != 2 || msgs[0].(map[string]any)["content"] != "Be brief." {
		t.Fatalf("upstream body %s", up.Raw)
	}
	recs := j.records(4)
	for _, r := range recs {
		if r.KeyID != keyID || r.Surface != "bedrock" || r.InputTokens != 50 || r.OutputTokens != 10 || r.Tags["team"] != "ml" || r.CostUSD == nil {
			t.Fatalf("record %+v", r)
		}
	}
}

// TestInvokeModelOtherFamilies: OpenAI-style and Llama-style bodies come
// back in their own formats.
func TestInvokeModelOtherFamilies(t *testing.T) {
	isolateAWS(t)
	fake := &fakeopenai.Server{Record: true, PromptTokens: 20, CompletionTokens: 7}
	j := start(t, fake, bedrockModels)
	keyID, _ := j.createKey("invoker", nil)
	client := j.bedrockClient(j.awsCredentials(keyID))
	invoke := func(body string) map[string]any {
		t.Helper()
		out, err := client.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{
			ModelId: aws.String(claudeID), Body: []byte(body), ContentType: aws.String("application/json")})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(out.Body, &m)
		return m
	}
	oa := invoke(`{"messages":[{"role":"user","content":"Say hello"}],"max_completion_tokens":30}`)
	if ch := oa["choices"].([]any)[0].(map[string]any); oa["object"] != "chat.completion" || ch["message"].(map[string]any)["content"] != fakeReply {
		t.Fatalf("OpenAI-style answer %v", oa)
	}
	ll := invoke(`{"prompt":"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nSay hello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n","max_gen_len":64,"temperature":0.5}`)
	if ll["generation"] != fakeReply || ll["prompt_token_count"] != float64(20) || ll["generation_token_count"] != float64(7) || ll["stop_reason"] != "stop" {
		t.Fatalf("Llama answer %v", ll)
	}
	up := fake.Requests()[1]
	msgs := up.Body["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["role"] != "system" || msgs[1].(map[string]any)["content"] != "Say hello" || up.Body["max_tokens"] != float64(64) {
		t.Fatalf("Llama prompt reached the upstream as %s", up.Raw)
	}
	chunks := invokeStream(t, client, claudeID, `{"prompt":"Say hello","max_gen_len":64}`)
	var text strings.Builder
	for _, c := range chunks {
		text.WriteString(c["generation"].(string))
	}
	last := chunks[len(chunks)-1]
	if text.String() != fakeReply || last["stop_reason"] != "stop" || last["amazon-bedrock-invocationMetrics"] == nil {
		t.Fatalf("Llama stream %v", chunks)
	}
	oaChunks := invokeStream(t, client, claudeID, `{"messages":[{"role":"user","content":"Say hello"}]}`)
	if oaChunks[0]["object"] != "chat.completion.chunk" || oaChunks[len(oaChunks)-1]["usage"] == nil {
		t.Fatalf("OpenAI-style stream %v", oaChunks)
	}
	// A body of no known family is a ValidationException saying which
	// families are.
	_, err := client.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{
		ModelId: aws.String(claudeID), Body: []byte(`{"inputText":"hi"}`), ContentType: aws.String("application/json")})
	if status, _ := httpStatus(err); status != http.StatusBadRequest || errorCode(err) != "ValidationException" || !strings.Contains(err.Error(), "anthropic_version") {
		t.Fatalf("unknown family: %v", err)
	}
}
