package fakeopenai

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// Answer is what a zero Server answers a chat request, for benchmarks of
// the work around it: the JSON of a plain answer, or the data of each
// event of a streamed one (8 text chunks, the finish chunk and the usage
// chunk; [DONE] left out).
func Answer(stream bool) (plain []byte, chunks [][]byte, err error) {
	body := `{"model":"bench-upstream","messages":[]}`
	if stream {
		body = `{"model":"bench-upstream","stream":true,"messages":[]}`
	}
	rec := httptest.NewRecorder()
	(&Server{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		return nil, nil, fmt.Errorf("fake answered %d: %s", rec.Code, rec.Body)
	}
	if !stream {
		return rec.Body.Bytes(), nil, nil
	}
	r := sse.NewReader(rec.Body)
	for {
		e, err := r.Next()
		if err == io.EOF {
			return nil, chunks, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if string(e.Data) != "[DONE]" {
			chunks = append(chunks, bytes.Clone(e.Data))
		}
	}
}

// Relay decodes streamed chunks (Answer's) as Junction's OpenAI adapter
// does, passing each canonical event to send; it stops at the first error.
func Relay(chunks [][]byte, send func(llm.Event) error) error {
	var dec openaiwire.ChunkDecoder
	for _, c := range chunks {
		evs, _, err := dec.Decode(c)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := send(ev); err != nil {
				return err
			}
		}
	}
	return nil
}
