package openai

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/cputime"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// BenchmarkResponsesTranslation is the CPU the Responses API spends on
// one call in wire work alone, against chat completions' in the same
// run: decoding the client's body, encoding the upstream's chat request,
// decoding the upstream's answer (the fake's bytes; 8 text chunks and a
// usage chunk when streamed) and encoding the client's answer — one
// response object, or the typed events. cpu-ns/op is the process's CPU
// time per call, steadier than ns/op on a loaded machine. No network,
// gateway or database:
// BenchmarkResponsesVsChat (internal/platform/server) measures the whole call.
//
//	go test -run '^$' -bench ResponsesTranslation -benchmem -count 5 ./internal/api/openai
func BenchmarkResponsesTranslation(b *testing.B) {
	chatBody := []byte(`{"model":"bench-model","max_tokens":256,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello."}]}`)
	respBody := []byte(`{"model":"bench-model","max_output_tokens":256,"instructions":"Be brief.","input":"Say hello."}`)
	plain, _, err := fakeopenai.Answer(false)
	if err != nil {
		b.Fatal(err)
	}
	_, chunks, err := fakeopenai.Answer(true)
	if err != nil {
		b.Fatal(err)
	}
	// upstream is the part both surfaces share: the chat request sent on
	// and the answer read back.
	upstream := func(req *llm.Request) *llm.Response {
		req.Model = "bench-upstream"
		if _, err := openaiwire.EncodeChatRequest(req); err != nil {
			b.Fatal(err)
		}
		resp, err := openaiwire.DecodeChatResponse(plain)
		if err != nil {
			b.Fatal(err)
		}
		return resp
	}
	stream := func(req *llm.Request, send func(llm.Event) error) {
		req.Model, req.Stream = "bench-upstream", true
		if _, err := openaiwire.EncodeChatRequest(req); err != nil {
			b.Fatal(err)
		}
		if err := fakeopenai.Relay(chunks, send); err != nil {
			b.Fatal(err)
		}
	}
	decode := func() (*responseRequest, *llm.Request) {
		req, err := decodeResponseRequest(respBody)
		if err != nil {
			b.Fatal(err)
		}
		input, err := inputItems(req.Input, "msg_in_1_")
		if err != nil {
			b.Fatal(err)
		}
		creq, err := req.chatRequest(input)
		if err != nil {
			b.Fatal(err)
		}
		return req, creq
	}
	w := sse.NewWriter(io.Discard)
	for _, tc := range []struct {
		name string
		run  func()
	}{
		{"chat/plain", func() {
			req, err := openaiwire.DecodeChatRequest(chatBody)
			if err != nil {
				b.Fatal(err)
			}
			resp := upstream(req)
			if _, err := openaiwire.EncodeChatResponse(resp, resp.ID, "bench-model", 1741569952); err != nil {
				b.Fatal(err)
			}
		}},
		{"responses/plain", func() {
			req, creq := decode()
			resp := upstream(creq)
			obj := req.shell("resp_1", "bench-model", 1741569952, false)
			obj.Output = outputItems(resp, "resp_1")
			obj.finish(resp.StopReason, resp.Usage)
			if _, err := json.Marshal(obj); err != nil {
				b.Fatal(err)
			}
		}},
		{"chat/stream", func() {
			req, err := openaiwire.DecodeChatRequest(chatBody)
			if err != nil {
				b.Fatal(err)
			}
			enc := openaiwire.ChunkEncoder{ID: "chatcmpl-1", Model: "bench-model", Created: 1741569952}
			stream(req, func(ev llm.Event) error {
				if c := enc.Encode(ev); c != nil {
					return w.Write("", c)
				}
				return nil
			})
			w.Write("", []byte("[DONE]"))
		}},
		{"responses/stream", func() {
			req, creq := decode()
			ev := &responseEvents{resp: req.shell("resp_1", "bench-model", 1741569952, false),
				emit: func(name string, data []byte) error { return w.WriteMore(name, data, true) }}
			if err := ev.begin(); err != nil {
				b.Fatal(err)
			}
			stream(creq, ev.on)
			if err := ev.close(); err != nil {
				b.Fatal(err)
			}
			if err := ev.completed(); err != nil {
				b.Fatal(err)
			}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				tc.run()
			}
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
