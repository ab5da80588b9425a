package server_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/wire/anthropicwire"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// What serving the Anthropic Messages API over an OpenAI-compatible
// upstream costs, per request, against serving chat completions over the
// same upstream. Both answer the same conversation with the same upstream
// bytes; the difference is the translation.
//
//	go test -run XXX -bench 'Translation|Surfaces' -benchmem ./internal/platform/server

var (
	benchOpenAIBody    = []byte(`{"model":"bench-model","max_tokens":256,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello."}]}`)
	benchAnthropicBody = []byte(`{"model":"bench-model","max_tokens":256,"system":"Be brief.","messages":[{"role":"user","content":"Say hello."}]}`)
)

// surface is one inbound wire format's work on a request: decode the
// client's body, and encode the canonical answer (whole, or event by event
// to w).
type surface struct {
	decode func([]byte) (*llm.Request, error)
	answer func(*llm.Response) ([]byte, error)
	stream func(w *sse.Writer) (send func(llm.Event) error, finish func() error)
}

var benchSurfaces = []struct {
	name string
	body []byte
	s    surface
}{
	{"openai", benchOpenAIBody, surface{
		decode: openaiwire.DecodeChatRequest,
		answer: func(r *llm.Response) ([]byte, error) {
			return openaiwire.EncodeChatResponse(r, r.ID, "bench-model", 1741569952)
		},
		stream: func(w *sse.Writer) (func(llm.Event) error, func() error) {
			enc := openaiwire.ChunkEncoder{ID: "chatcmpl-1", Model: "bench-model", Created: 1741569952}
			return func(ev llm.Event) error {
					if c := enc.Encode(ev); c != nil {
						return w.Write("", c)
					}
					return nil
				}, func() error {
					return w.Write("", []byte("[DONE]"))
				}
		},
	}},
	{"anthropic", benchAnthropicBody, surface{
		decode: anthropicwire.DecodeRequest,
		answer: func(r *llm.Response) ([]byte, error) { return anthropicwire.EncodeResponse(r, r.ID, "bench-model") },
		stream: func(w *sse.Writer) (func(llm.Event) error, func() error) {
			enc := anthropicwire.StreamEncoder{ID: "msg_1", Model: "bench-model"}
			write := func(frames []anthropicwire.Frame) error {
				for _, f := range frames {
					if err := w.Write(f.Name, f.Data); err != nil {
						return err
					}
				}
				return nil
			}
			return func(ev llm.Event) error { return write(enc.Encode(ev)) },
				func() error { return write(enc.Finish()) }
		},
	}},
}

// BenchmarkSurfaceTranslation is the CPU a surface spends on one request
// to an OpenAI-compatible upstream, without the network: decoding the
// client's body, encoding the upstream's, decoding the upstream's answer
// (the fake's bytes; 8 text chunks and a usage chunk when streamed) and
// encoding the client's. openai is the pass-through baseline; anthropic
// adds the Messages-to-chat-completions translation both ways.
func BenchmarkSurfaceTranslation(b *testing.B) {
	plain, _ := fakeAnswer(b, false)
	_, chunks := fakeAnswer(b, true)
	for _, sf := range benchSurfaces {
		b.Run(sf.name+"/plain", func(b *testing.B) {
			defer reportCPU(b)()
			b.ReportAllocs()
			for b.Loop() {
				req, err := sf.s.decode(sf.body)
				if err != nil {
					b.Fatal(err)
				}
				req.Model = "bench-upstream"
				if _, err := openaiwire.EncodeChatRequest(req); err != nil {
					b.Fatal(err)
				}
				resp, err := openaiwire.DecodeChatResponse(plain)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := sf.s.answer(resp); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sf.name+"/stream", func(b *testing.B) {
			w := sse.NewWriter(io.Discard)
			defer reportCPU(b)()
			b.ReportAllocs()
			for b.Loop() {
				req, err := sf.s.decode(sf.body)
				if err != nil {
					b.Fatal(err)
				}
				req.Model, req.Stream = "bench-upstream", true
				if _, err := openaiwire.EncodeChatRequest(req); err != nil {
					b.Fatal(err)
				}
				send, finish := sf.s.stream(w)
				if err := fakeopenai.Relay(chunks, send); err != nil {
					b.Fatal(err)
				}
				if err := finish(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSurfacesThroughJunction sends the same conversation through a
// real Junction on loopback, as chat completions and as Messages, one
// request at a time, and reports the process's CPU per request
// (cpu-µs/op: client, Junction and the fake upstream together, so only
// the difference between the two surfaces is Junction's).
func BenchmarkSurfacesThroughJunction(b *testing.B) {
	for _, stream := range []bool{false, true} {
		for _, sf := range benchSurfaces {
			name := sf.name + "/" + map[bool]string{false: "plain", true: "stream"}[stream]
			b.Run(name, func(b *testing.B) {
				_, chat := benchTargets(b)
				base := strings.TrimSuffix(chat, "/v1/chat/completions")
				url, want := base+"/v1/chat/completions", `"finish_reason":"stop"`
				if sf.name == "anthropic" {
					url, want = base+"/v1/messages", `"stop_reason":"end_turn"`
				}
				body := sf.body
				if stream {
					body = bytes.Replace(body, []byte(`{`), []byte(`{"stream":true,`), 1)
					want = "data: [DONE]"
					if sf.name == "anthropic" {
						want = "event: message_stop"
					}
				}
				benchSequential(b, url, body, want)
			})
		}
	}
}

// benchSequential sends body to url b.N times on one keep-alive
// connection, checks each answer, and reports CPU per request.
func benchSequential(b *testing.B, url string, body []byte, want string) {
	one := benchPoster(b, url, body, want)
	one() // warm the connection
	b.ReportAllocs()
	report := reportCPU(b)
	b.ResetTimer()
	for range b.N {
		one()
	}
	b.StopTimer()
	report()
}

// benchPoster returns a function that sends body to url on its own
// keep-alive connection and fails the benchmark unless the answer is a
// 200 holding want.
func benchPoster(b *testing.B, url string, body []byte, want string) func() {
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	b.Cleanup(client.CloseIdleConnections)
	var buf bytes.Buffer
	return func() {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+benchAdminKey)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(buf.Bytes(), []byte(want)) {
			b.Fatalf("status %d, err %v, body %.300s", resp.StatusCode, err, buf.Bytes())
		}
	}
}

// reportCPU starts measuring the process's CPU time; the function it
// returns reports it per operation as cpu-µs/op. On a busy machine this
// is steadier than ns/op, which counts the time spent waiting for a CPU.
func reportCPU(b *testing.B) func() {
	cpu0, ok := selfCPU()
	return func() {
		if cpu1, ok1 := selfCPU(); ok && ok1 && b.N > 0 {
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		}
	}
}

// selfCPU returns the user plus system CPU time this process has used,
// from /proc; ok is false where there is none. Its unit is the kernel's
// clock tick (10ms), fine over a benchmark's second.
func selfCPU() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}
