package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkChatTracing is a chat request through Junction with tracing
// off (the default) and on, exporting every span over OTLP/HTTP to a
// collector on loopback that reads and drops them; the ratio of the two
// is what tracing costs a request.
//
//	go test -run XXX -bench ChatTracing -benchmem ./internal/platform/server
func BenchmarkChatTracing(b *testing.B) {
	b.Run("off", func(b *testing.B) {
		_, j := startBenchJunction(b)
		benchChat(b, j+"/v1/chat/completions", benchPlainBody, false)
	})
	b.Run("on", func(b *testing.B) {
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/x-protobuf")
		}))
		b.Cleanup(sink.Close)
		_, j := startBenchJunction(b, `tracing: {endpoint: "`+sink.URL+`"}`)
		benchChat(b, j+"/v1/chat/completions", benchPlainBody, false)
	})
}
