package openaiwire

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// clientBodies are chat-completions bodies as OpenAI clients send them.
func clientBodies(t testing.TB) []string {
	full, err := os.ReadFile("testdata/chat_request_full.json")
	if err != nil {
		t.Fatal(err)
	}
	return []string{string(full),
		`{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}`,
		`{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false},"temperature":0.2,"seed":7}`,
		`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"low"}}]}]}`,
		"{ \"stream_options\" : {\"include_usage\":true} ,\n \"model\" : \"m\" , \"messages\" : [{\"role\":\"user\",\"content\":\"x\"}] , \"stream\" : false }",
		`{"model":"gpt-4o","max_tokens":64,"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}}],"tool_choice":{"type":"function","function":{"name":"get_weather"}}}`,
		`{"model":"o3-mini","max_completion_tokens":500,"messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}],"response_format":{"type":"json_object"},"user":"u-1","stop":["\n\n"],"metadata":{"app":"faq"}}`,
	}
}

// canonical is what an upstream that decodes a body as Junction does
// would take from it.
func canonical(t *testing.T, body []byte) *llm.Request {
	t.Helper()
	req, err := DecodeChatRequest(body)
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return req // json.Marshal compacts its raw members: white space does not count
}

// TestPatchChatRequestSendsWhatEncodingSends: for every body, upstream
// model, stream or not, and a budget's max_tokens or none, the patched
// body says to the upstream what the re-encoded one says.
func TestPatchChatRequestSendsWhatEncodingSends(t *testing.T) {
	cap := 99
	patched := 0
	for _, body := range clientBodies(t) {
		for _, model := range []string{"gpt-4o-2024-08-06", "o3-mini", `we"ird/mödel`} {
			for _, stream := range []bool{false, true} {
				for _, budget := range []*int{nil, &cap} {
					req, err := DecodeChatRequest([]byte(body))
					if err != nil {
						t.Fatal(err)
					}
					if req.MaxTokens == nil {
						req.MaxTokens = budget
					}
					got, ok := PatchChatRequest([]byte(body), model, stream, req.MaxTokens)
					if !ok {
						continue
					}
					patched++
					r := *req
					r.Model, r.Stream = model, stream
					want, err := EncodeChatRequest(&r)
					if err != nil {
						t.Fatal(err)
					}
					g, _ := json.Marshal(canonical(t, got))
					w, _ := json.Marshal(canonical(t, want))
					if string(g) != string(w) {
						t.Errorf("model %s stream %v budget %v:\n patched %s\n encoded %s", model, stream, budget, got, want)
					}
				}
			}
		}
	}
	if patched < 50 {
		t.Fatalf("only %d bodies were patched; the test checks little", patched)
	}
}

func TestPatchChatRequestRefusesWhatItCannotPatch(t *testing.T) {
	for _, body := range []string{
		`{"model":"a","model":"b","messages":[]}`,
		`{"mod\u0065l":"a","messages":[]}`,
		`{"messages":[]}`,
		`{"model":"a","max_tokens":5,"max_completion_tokens":6}`,
		`[]`, `{"model":"a"} x`, `{"model":"a",}`,
	} {
		if out, ok := PatchChatRequest([]byte(body), "m", true, nil); ok {
			t.Errorf("%s patched to %s; want it refused", body, out)
		}
	}
	if _, ok := PatchChatRequest([]byte(`{"model":"a","max_tokens":5}`), "o1", false, nil); ok {
		t.Error("a reasoning model's max_tokens was passed through; it must be renamed")
	}
}

func TestPatchChatRequestEdits(t *testing.T) {
	n := 7
	for _, tc := range []struct {
		body, model string
		stream      bool
		max         *int
		want        string
	}{
		{`{"model":"a","messages":[]}`, "up", false, nil, `{"model":"up","messages":[]}`},
		{`{"model":"a","messages":[]}`, "up", true, &n, `{"model":"up","messages":[],"stream":true,"stream_options":{"include_usage":true},"max_tokens":7}`},
		{`{"stream_options":{"include_usage":true}, "model":"a","stream":false}`, "up", false, nil, `{"model":"up","stream":false}`},
		{`{"model":"a", "stream_options":{}}`, "up", false, nil, `{"model":"up"}`},
		{`{"model":"a","stream":true,"stream_options":null}`, "o4-mini", true, &n, `{"model":"o4-mini","stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":7}`},
	} {
		got, ok := PatchChatRequest([]byte(tc.body), tc.model, tc.stream, tc.max)
		if !ok || string(got) != tc.want {
			t.Errorf("%s → %s, %v; want %s", tc.body, got, ok, tc.want)
		}
	}
}

func BenchmarkRequestBody(b *testing.B) {
	body := []byte(clientBodies(b)[2])
	req, _ := DecodeChatRequest(body)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := *req
			r.Model = "gpt-4o-2024-08-06"
			EncodeChatRequest(&r)
		}
	})
	b.Run("patch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			PatchChatRequest(body, "gpt-4o-2024-08-06", true, nil)
		}
	})
}

// FuzzPatchChatRequest: for any body the surface accepts, a patched body
// says what the encoded one says, or the patch is refused.
func FuzzPatchChatRequest(f *testing.F) {
	for _, b := range clientBodies(f) {
		f.Add([]byte(b), "gpt-4o", true, 0)
		f.Add([]byte(b), "o1", false, 12)
	}
	f.Fuzz(func(t *testing.T, body []byte, model string, stream bool, budget int) {
		req, err := DecodeChatRequest(body)
		if err != nil || model == "" {
			return
		}
		if req.MaxTokens == nil && budget > 0 {
			req.MaxTokens = &budget
		}
		got, ok := PatchChatRequest(body, model, stream, req.MaxTokens)
		if !ok {
			return
		}
		r := *req
		r.Model, r.Stream = model, stream
		want, _ := EncodeChatRequest(&r)
		g, _ := json.Marshal(canonical(t, got))
		w, _ := json.Marshal(canonical(t, want))
		if string(g) != string(w) {
			t.Errorf("patched %s\nencoded %s", got, want)
		}
	})
}
