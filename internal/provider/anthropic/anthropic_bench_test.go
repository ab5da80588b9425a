package anthropic

import (
	"context"
	"io"
	"testing"

	"github.com/junctionhq/junction/internal/wire/anthropicwire"
)

// BenchmarkChat measures a typical tool-using round trip: translating the
// request, the loopback HTTP exchange, and translating the response.
func BenchmarkChat(b *testing.B) {
	p, _ := fake(b, Config{}, serve(b, 200, "tool_use_response.json"))
	req := weatherRequest()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Chat(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatStream measures the same exchange streamed, reading every
// event of a tool-using stream.
func BenchmarkChatStream(b *testing.B) {
	p, _ := fake(b, Config{}, serve(b, 200, "stream_tool_use.sse"))
	req := weatherRequest()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := p.ChatStream(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
	}
}

// BenchmarkTranslate measures translation alone, without the network:
// encoding the request body and decoding the response.
func BenchmarkTranslate(b *testing.B) {
	req := weatherRequest()
	resp := golden(b, "tool_use_response.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := anthropicwire.EncodeRequest(req, 4096, false); err != nil {
			b.Fatal(err)
		}
		if _, err := anthropicwire.DecodeResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}
