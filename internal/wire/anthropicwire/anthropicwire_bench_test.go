package anthropicwire

import (
	"bytes"
	"io"
	"testing"

	"github.com/junctionhq/junction/internal/wire/sse"
)

// BenchmarkDecodeRequest decodes a tool-using conversation with images,
// as a client sends it.
func BenchmarkDecodeRequest(b *testing.B) {
	body := golden(b, "request_full.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeRequest encodes the same conversation for an Anthropic
// upstream.
func BenchmarkEncodeRequest(b *testing.B) {
	req, err := DecodeRequest(golden(b, "request_full.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeRequest(req, 4096, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeResponse renders a response with text and a tool call.
func BenchmarkEncodeResponse(b *testing.B) {
	resp, err := DecodeResponse(golden(b, "response_tool_use.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeResponse(resp, resp.ID, "claude"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamDecode decodes a tool-using stream, event by event.
func BenchmarkStreamDecode(b *testing.B) {
	body := golden(b, "stream_tool_use.sse")
	b.ReportAllocs()
	for b.Loop() {
		r := sse.NewReader(bytes.NewReader(body))
		var d StreamDecoder
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := d.Decode(e.Name, e.Data); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkStreamEncode renders an OpenAI upstream's tool-calling stream
// as Anthropic events.
func BenchmarkStreamEncode(b *testing.B) {
	evs := openAIToolStream()
	var frames int
	b.ReportAllocs()
	for b.Loop() {
		e := StreamEncoder{ID: "msg_1", Model: "m"}
		for _, ev := range evs {
			frames += len(e.Encode(ev))
		}
		frames += len(e.Finish())
	}
	_ = frames
}
