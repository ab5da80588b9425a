package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// call runs one operation of p, so that a case can be checked against
// Converse and ConverseStream alike. For a stream, an error the stream
// returns before io.EOF counts as the call's error.
type call struct {
	name string
	do   func(ctx context.Context, p *Provider) error
}

var calls = []call{
	{"converse", func(ctx context.Context, p *Provider) error {
		_, err := p.Chat(ctx, hello)
		return err
	}},
	{"converse-stream", func(ctx context.Context, p *Provider) error {
		s, err := p.ChatStream(ctx, hello)
		if err != nil {
			return err
		}
		defer s.Close()
		for {
			if _, err := s.Recv(); err != nil {
				return err
			}
		}
	}},
}

// TestHTTPErrors checks the mapping of Bedrock's error answers, which
// ConverseStream gives before any event as Converse does.
func TestHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		status         int
		errType        string
		header         map[string]string
		wantStatus     int
		wantType       llm.ErrorType
		wantRetryAfter string
	}{
		{429, "ThrottlingException", map[string]string{"Retry-After": "7"}, 429, llm.ErrRateLimit, "7"},
		{429, "ModelNotReadyException", nil, 429, llm.ErrRateLimit, ""},
		{400, "ValidationException", nil, 400, llm.ErrInvalidRequest, ""},
		{404, "ResourceNotFoundException", nil, 404, llm.ErrNotFound, ""},
		{403, "AccessDeniedException", nil, 502, llm.ErrUpstream, ""},
		{408, "ModelTimeoutException", nil, 504, llm.ErrTimeout, ""},
		{424, "ModelErrorException", nil, 502, llm.ErrUpstream, ""},
		{500, "InternalServerException", nil, 502, llm.ErrUpstream, ""},
		{503, "ServiceUnavailableException", map[string]string{"Retry-After": "30"}, 503, llm.ErrOverloaded, "30"},
		{413, "SomeNewException", nil, 413, llm.ErrTooLarge, ""},
		{500, "", nil, 502, llm.ErrUpstream, ""},
	} {
		for _, c := range calls {
			t.Run(c.name+"/"+tc.errType, func(t *testing.T) {
				msg := "upstream says: " + tc.errType + " happened"
				p, _ := newFake(t, awsError(tc.status, tc.errType, msg, tc.header))
				err := c.do(t.Context(), p)
				var e *llm.Error
				if !errors.As(err, &e) {
					t.Fatalf("err = %v, want an *llm.Error", err)
				}
				if e.Status != tc.wantStatus || e.Type != tc.wantType || e.RetryAfter != tc.wantRetryAfter || e.Provider != "bedrock-test" {
					t.Errorf("err = %d %s (retry after %q, provider %q), want %d %s (retry after %q, provider bedrock-test)",
						e.Status, e.Type, e.RetryAfter, e.Provider, tc.wantStatus, tc.wantType, tc.wantRetryAfter)
				}
				if !strings.Contains(e.Message, msg) {
					t.Errorf("message %q does not carry the upstream's %q", e.Message, msg)
				}
				if tc.errType == "AccessDeniedException" && !strings.Contains(e.Message, "upstream rejected Junction's credentials") {
					t.Errorf("message %q does not say Junction's credentials were rejected", e.Message)
				}
			})
		}
	}
}

// TestStreamExceptions checks the exceptions Bedrock sends inside a stream
// that has begun.
func TestStreamExceptions(t *testing.T) {
	for _, tc := range []struct {
		exception  string
		wantStatus int
		wantType   llm.ErrorType
	}{
		{"throttlingException", 429, llm.ErrRateLimit},
		{"modelStreamErrorException", 502, llm.ErrUpstream},
		{"internalServerException", 502, llm.ErrUpstream},
		{"serviceUnavailableException", 503, llm.ErrOverloaded},
		{"validationException", 400, llm.ErrInvalidRequest},
	} {
		t.Run(tc.exception, func(t *testing.T) {
			msg := "the " + tc.exception + " message"
			payload, _ := json.Marshal(map[string]string{"message": msg})
			fs := append(frames(t, "stream_text.json")[:2], frame{Exception: tc.exception, Payload: payload})
			p, _ := newFake(t, streamReply(fs, nil))
			s, err := p.ChatStream(t.Context(), hello)
			if err != nil {
				t.Fatalf("ChatStream: %v", err)
			}
			defer s.Close()
			evs, err := drain(t, s)
			var e *llm.Error
			if !errors.As(err, &e) || e.Status != tc.wantStatus || e.Type != tc.wantType || !strings.Contains(e.Message, msg) {
				t.Fatalf("stream ended with %#v, want %d %s carrying %q", err, tc.wantStatus, tc.wantType, msg)
			}
			if len(evs) != 2 {
				t.Errorf("got %d events before the exception, want 2", len(evs))
			}
		})
	}
}

// TestConnectionRefused checks that an unreachable Bedrock is a 502.
func TestConnectionRefused(t *testing.T) {
	// Port 1 is below every ephemeral range, so no test server in this or
	// a concurrent test process can be listening there; a port freed by a
	// closed httptest server can be taken by one.
	p := testProvider(t, "http://127.0.0.1:1")
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			var e *llm.Error
			if err := c.do(t.Context(), p); !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.Type != llm.ErrUpstream {
				t.Fatalf("err = %v, want a 502 *llm.Error", err)
			}
			if !strings.Contains(e.Message, "connection refused") {
				t.Errorf("message %q does not say the connection was refused", e.Message)
			}
		})
	}
}

// TestCancel checks that a caller that goes away gets its context's error
// back, unwrapped, whether it was waiting for the answer or reading the
// stream, and that Bedrock sees the request abandoned.
func TestCancel(t *testing.T) {
	t.Run("converse", func(t *testing.T) {
		arrived, released := make(chan struct{}), make(chan struct{})
		p, _ := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-r.Context().Done()
			close(released)
		})
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-arrived
			cancel()
		}()
		if _, err := p.Chat(ctx, hello); err != context.Canceled {
			t.Errorf("Chat = %#v, want context.Canceled", err)
		}
		<-released
	})
	t.Run("converse-stream", func(t *testing.T) {
		released := make(chan struct{})
		p, _ := newFake(t, streamReply(frames(t, "stream_text.json")[:1], func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			close(released)
		}))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		s, err := p.ChatStream(ctx, hello)
		if err != nil {
			t.Fatalf("ChatStream: %v", err)
		}
		defer s.Close()
		if ev, err := s.Recv(); err != nil || ev.Type != llm.EventStart {
			t.Fatalf("Recv = %+v, %v; want the start event", ev, err)
		}
		cancel()
		if _, err := s.Recv(); err != context.Canceled {
			t.Errorf("Recv after cancel = %#v, want context.Canceled", err)
		}
		s.Close()
		<-released
	})
}

// TestGarbage checks that an answer that cannot be parsed is a 502.
func TestGarbage(t *testing.T) {
	var corrupt bytes.Buffer
	if err := frames(t, "stream_text.json")[1].Encode(&corrupt); err != nil {
		t.Fatal(err)
	}
	b := corrupt.Bytes()
	b[len(b)-1] ^= 0xff // break the message checksum
	for _, tc := range []struct {
		call  call
		reply http.HandlerFunc
	}{
		{calls[0], jsonReply([]byte(`{"output": {"message": `))},
		{calls[1], streamReply(frames(t, "stream_text.json")[:1], func(w http.ResponseWriter, r *http.Request) { w.Write(b) })},
	} {
		t.Run(tc.call.name, func(t *testing.T) {
			p, _ := newFake(t, tc.reply)
			var e *llm.Error
			if err := tc.call.do(t.Context(), p); !errors.As(err, &e) || e.Status != http.StatusBadGateway || !strings.Contains(e.Message, "could not parse") {
				t.Fatalf("err = %v, want a 502 saying the answer could not be parsed", err)
			}
		})
	}
}
