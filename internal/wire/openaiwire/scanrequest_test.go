package openaiwire

import (
	"reflect"
	"testing"
)

// agreeRequest reports how scanChatRequest and decodeChatRequest differ
// on body, if they do; fast reports whether the scanner took it.
func agreeRequest(body []byte) (diff string, fast bool) {
	got, fast := scanChatRequest(body)
	want, err := decodeChatRequest(body)
	switch {
	case !fast:
		return "", false
	case err != nil:
		return "scanner took a body the decoder refuses: " + err.Error(), true
	case !reflect.DeepEqual(got, want):
		return "scanner and decoder disagree", true
	}
	return "", true
}

var requestEdges = []string{
	`{"model":"m","messages":[{"role":"user","content":"hi"}],"model":"n"}`,
	`{"model":"m","messages":[{"Role":"user","content":"hi"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"hi","content":"ho"}]}`,
	`{"model":"m","messages":[null]}`, `{"model":"m","messages":null}`, `{"model":null,"messages":[{"role":"user","content":"x"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1e400}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"true"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":null,"user":null,"top_p":null,"max_tokens":null}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"Model":"other","STREAM":true}`,
	`{"model":"m","messages":[{"role":"tool","content":"x"}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"audio"}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":[{"type":"text","text":"1"}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","tool_calls":[null]}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":"END","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","response_format":null}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}]} x`, `[]`, `null`, `{}`, ``,
	"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800 \xff\"}]}",
}

func TestScanChatRequestAgrees(t *testing.T) {
	fast := 0
	for _, b := range append(clientBodies(t), requestEdges...) {
		d, ok := agreeRequest([]byte(b))
		if d != "" {
			t.Errorf("%s\n  %s", b, d)
		}
		if ok {
			fast++
		}
	}
	for _, b := range clientBodies(t) {
		if _, ok := scanChatRequest([]byte(b)); !ok {
			t.Errorf("the scanner refused a client's body: %s", b)
		}
	}
	if fast < 10 {
		t.Fatalf("only %d bodies took the scanner", fast)
	}
}

// FuzzScanChatRequest holds the scanner to the decoder on any body.
func FuzzScanChatRequest(f *testing.F) {
	for _, b := range append(clientBodies(f), requestEdges...) {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if d, _ := agreeRequest(body); d != "" {
			t.Errorf("%q: %s", body, d)
		}
	})
}

func BenchmarkDecodeChatRequest(b *testing.B) {
	body := []byte(clientBodies(b)[2])
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decodeChatRequest(body)
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			DecodeChatRequest(body)
		}
	})
}

func TestIncludeUsage(t *testing.T) {
	for opts, want := range map[string]bool{
		``: false, `null`: false, `{"include_usage":true}`: true, `{"include_usage":false}`: false,
		`{ "include_usage" : true }`: true, `{"Include_Usage":true}`: true, `{"include_usage":true,"x":1}`: true, `{}`: false,
	} {
		body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]`
		if opts != "" {
			body += `,"stream_options":` + opts
		}
		req, err := DecodeChatRequest([]byte(body + `}`))
		if err != nil {
			t.Fatalf("%s: %v", opts, err)
		}
		if got := IncludeUsage(req); got != want {
			t.Errorf("stream_options %s: IncludeUsage = %v, want %v", opts, got, want)
		}
	}
}
