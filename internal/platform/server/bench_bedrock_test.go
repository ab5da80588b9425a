package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/junctionhq/junction/internal/testkit/cputime"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/wire/bedrockwire"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// What serving Bedrock's Converse API over an OpenAI-compatible upstream
// costs, per request, against serving chat completions over the same
// upstream (the OpenAI surface's pass-through baseline).
//
//	go test -run XXX -bench Bedrock -benchmem ./internal/platform/server

var (
	bedrockBenchOpenAI   = []byte(`{"model":"bench-model","max_tokens":256,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello."}]}`)
	bedrockBenchConverse = []byte(`{"system":[{"text":"Be brief."}],"messages":[{"role":"user","content":[{"text":"Say hello."}]}],"inferenceConfig":{"maxTokens":256}}`)
)

// fakeAnswer returns what the fake OpenAI upstream answers (see
// fakeopenai.Answer).
func fakeAnswer(b *testing.B, stream bool) (plain []byte, chunks [][]byte) {
	plain, chunks, err := fakeopenai.Answer(stream)
	if err != nil {
		b.Fatal(err)
	}
	return plain, chunks
}

// BenchmarkBedrockTranslation is the CPU one request costs in wire
// translation alone, without the network: decoding the client's body,
// encoding the upstream's request, decoding the upstream's answer (the
// fake's bytes) and encoding the client's answer — as one JSON body, or
// as SSE chunks (openai) or event-stream frames (converse).
func BenchmarkBedrockTranslation(b *testing.B) {
	plain, _ := fakeAnswer(b, false)
	_, chunks := fakeAnswer(b, true)
	decodeConverse := func(body []byte) (*llm.Request, error) {
		req, _, err := bedrockwire.DecodeConverseRequest(body)
		return req, err
	}
	cases := []struct {
		name   string
		body   []byte
		decode func([]byte) (*llm.Request, error)
		answer func(*llm.Response) ([]byte, error)
		stream func() (send func(llm.Event) error, end func() error)
	}{
		{"openai", bedrockBenchOpenAI, openaiwire.DecodeChatRequest,
			func(r *llm.Response) ([]byte, error) {
				return openaiwire.EncodeChatResponse(r, r.ID, "bench-model", 1741569952)
			},
			func() (func(llm.Event) error, func() error) {
				w := sse.NewWriter(io.Discard)
				enc := openaiwire.ChunkEncoder{ID: "chatcmpl-1", Model: "bench-model", Created: 1741569952}
				return func(ev llm.Event) error {
						if c := enc.Encode(ev); c != nil {
							return w.Write("", c)
						}
						return nil
					},
					func() error { return w.Write("", []byte("[DONE]")) }
			}},
		{"converse", bedrockBenchConverse, decodeConverse,
			func(r *llm.Response) ([]byte, error) { return bedrockwire.EncodeConverseResponse(r, time.Millisecond) },
			func() (func(llm.Event) error, func() error) {
				sw := bedrockwire.NewStreamWriter(io.Discard)
				return func(ev llm.Event) error { _, err := sw.Write(ev); return err },
					func() error { return sw.End(time.Millisecond) }
			}},
	}
	for _, c := range cases {
		b.Run(c.name+"/plain", func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				req, err := c.decode(c.body)
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
				if _, err := c.answer(resp); err != nil {
					b.Fatal(err)
				}
			}
			reportCPUPerOp(b, cpu0)
		})
		b.Run(c.name+"/stream", func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				req, err := c.decode(c.body)
				if err != nil {
					b.Fatal(err)
				}
				req.Model, req.Stream = "bench-upstream", true
				if _, err := openaiwire.EncodeChatRequest(req); err != nil {
					b.Fatal(err)
				}
				send, end := c.stream()
				if err := fakeopenai.Relay(chunks, send); err != nil {
					b.Fatal(err)
				}
				if err := end(); err != nil {
					b.Fatal(err)
				}
			}
			reportCPUPerOp(b, cpu0)
		})
	}
}

// BenchmarkBedrockThroughJunction sends the same conversation through a
// real Junction on loopback, one request at a time on one keep-alive
// connection, as chat completions and as Converse (with a bearer key, and
// signed with SigV4), and reports the process's CPU per request
// (cpu-ns/op). The client, Junction and the fake upstream share the
// process, so only the difference between cases is Junction's: what
// translating Converse, and verifying a signature, add to the OpenAI path.
//
// The SigV4 cases replay one signature (re-signed each minute, inside the
// skew window), so the client's signing is not counted, only Junction's
// verification.
func BenchmarkBedrockThroughJunction(b *testing.B) {
	t := startSurfaceBench(b)
	streamConverse := bedrockBenchConverse
	cases := []struct {
		name, path string
		body       []byte
		want       string
		sigv4      bool
	}{
		{"openai/plain", "/v1/chat/completions", bedrockBenchOpenAI, `"finish_reason":"stop"`, false},
		{"converse-bearer/plain", "/model/bench-model/converse", bedrockBenchConverse, `"stopReason":"end_turn"`, false},
		{"converse-sigv4/plain", "/model/bench-model/converse", bedrockBenchConverse, `"stopReason":"end_turn"`, true},
		{"openai/stream", "/v1/chat/completions", bytes.Replace(bedrockBenchOpenAI, []byte(`{`), []byte(`{"stream":true,"stream_options":{"include_usage":true},`), 1), "data: [DONE]", false},
		{"converse-bearer/stream", "/model/bench-model/converse-stream", streamConverse, "messageStop", false},
		{"converse-sigv4/stream", "/model/bench-model/converse-stream", streamConverse, "messageStop", true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			t.run(b, c.path, c.body, []byte(c.want), c.sigv4)
		})
	}
}

// surfaceBench is a Junction in front of the fake upstream, as `junction
// serve` runs (ledger on, access log formatted then discarded), and an
// AWS access key for its admin key.
type surfaceBench struct {
	url          string
	akid, secret string
	client       *http.Client
}

func startSurfaceBench(b *testing.B) *surfaceBench {
	b.Helper()
	_, url := startBenchJunction(b)
	s := &surfaceBench{url: url, client: &http.Client{Transport: &http.Transport{DisableCompression: true}}}
	b.Cleanup(s.client.CloseIdleConnections)

	// The admin key's id, then an access key for it.
	get := func(method, path string) []byte {
		req, _ := http.NewRequest(method, s.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+benchAdminKey)
		resp, err := s.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return out
	}
	var keys struct{ Keys []struct{ ID string } }
	json.Unmarshal(get("GET", "/api/v1/keys"), &keys)
	var cred struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	json.Unmarshal(get("POST", "/api/v1/keys/"+keys.Keys[0].ID+"/aws-credentials"), &cred)
	if cred.AccessKeyID == "" {
		b.Fatal("no AWS credentials issued")
	}
	s.akid, s.secret = cred.AccessKeyID, cred.SecretAccessKey
	return s
}

// signedHeaders returns the headers of a request signed now with the
// SDK's signer, for replay.
func (s *surfaceBench) signedHeaders(b *testing.B, path string, body []byte) http.Header {
	req, _ := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: s.akid, SecretAccessKey: s.secret},
		req, hex.EncodeToString(sum[:]), "bedrock", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	return req.Header
}

func (s *surfaceBench) run(b *testing.B, path string, body, want []byte, sigv4 bool) {
	var buf bytes.Buffer
	var hdr http.Header
	var signedAt time.Time
	one := func() {
		req, _ := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(body))
		if sigv4 {
			if time.Since(signedAt) > time.Minute {
				hdr, signedAt = s.signedHeaders(b, path, body), time.Now()
			}
			req.Header = hdr.Clone()
		} else {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+benchAdminKey)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(buf.Bytes(), want) {
			b.Fatalf("status %d, err %v, body %.300q", resp.StatusCode, err, buf.Bytes())
		}
	}
	one() // warm the connection
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for range b.N {
		one()
	}
	b.StopTimer()
	reportCPUPerOp(b, cpu0)
}

// reportCPUPerOp reports the process CPU used since cpu0, per operation,
// as cpu-ns/op. On a busy machine it is steadier than ns/op, which counts
// the time spent waiting for a CPU.
func reportCPUPerOp(b *testing.B, cpu0 time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
	}
}
