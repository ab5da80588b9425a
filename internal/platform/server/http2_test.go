package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/server"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// http2Only fails any exchange that did not happen over HTTP/2, so a
// test using it cannot pass over HTTP/1.1 by accident.
type http2Only struct{ rt http.RoundTripper }

func (h http2Only) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.rt.RoundTrip(r)
	if err == nil && resp.ProtoMajor != 2 {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s answered over %s, not HTTP/2", r.Method, r.URL.Path, resp.Proto)
	}
	return resp, err
}

// h2cClient speaks cleartext HTTP/2 with prior knowledge and nothing
// else, as the AWS SDK for JavaScript does by default.
func h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: http2Only{tr}}
}

// postJSON sends an authenticated JSON request with c.
func postJSON(t *testing.T, c *http.Client, url, key, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// chatOverHTTP2 makes a plain and a streamed chat completion through
// client and checks both answers.
func chatOverHTTP2(t *testing.T, c *http.Client, base string) {
	t.Helper()
	resp := postJSON(t, c, base+"/v1/chat/completions", adminKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil || len(out.Choices) != 1 ||
		out.Choices[0].Message.Content != "Hello from the fake upstream. Junction forwarded this." {
		t.Fatalf("plain chat over HTTP/2: %d %s", resp.StatusCode, b)
	}

	resp = postJSON(t, c, base+"/v1/chat/completions", adminKey, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("streamed chat over HTTP/2: %d %s", resp.StatusCode, resp.Header)
	}
	var text strings.Builder
	chunks, done := 0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var ch struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		chunks++
		for _, c := range ch.Choices {
			text.WriteString(c.Delta.Content)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !done || chunks < 3 || text.String() != "Hello from the fake upstream. Junction forwarded this." {
		t.Fatalf("stream over HTTP/2: done %v, %d chunks, text %q", done, chunks, text.String())
	}
}

// TestHTTP2PriorKnowledge is the AWS SDK for JavaScript's default: a
// client that speaks only cleartext HTTP/2 makes OpenAI calls, plain and
// streamed, an Anthropic SDK stream, and signed Bedrock Converse and
// ConverseStream calls whose AWS event stream arrives whole.
func TestHTTP2PriorKnowledge(t *testing.T) {
	isolateAWS(t)
	fake := &fakeopenai.Server{Record: true, PromptTokens: 50, CompletionTokens: 10}
	j := start(t, fake, bedrockModels)
	c := h2cClient()
	chatOverHTTP2(t, c, j.url)

	// The Anthropic SDK's SSE stream over h2c, rebuilt by its accumulator.
	claude := j.claude(adminKey, option.WithHTTPClient(c))
	stream := claude.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "gpt-4o-mini", MaxTokens: 100, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))},
	})
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "Hello from the fake upstream. Junction forwarded this." || msg.StopReason != anthropic.StopReasonEndTurn {
		t.Fatalf("Anthropic stream over h2c: %+v", msg)
	}

	keyID, _ := j.createKey("h2-app", nil)
	akid, secret := j.awsCredentials(keyID)
	client := j.bedrockClient(akid, secret, func(o *bedrockruntime.Options) { o.HTTPClient = c })
	out, err := client.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String(claudeID), Messages: []types.Message{userText("Say hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := readStream(t, out)
	if s.err != nil {
		t.Fatal(s.err)
	}
	if got := strings.Join(s.events, ","); got != "messageStart,contentBlockDelta,contentBlockStop,messageStop,metadata" ||
		s.text != "Hello from the fake upstream. Junction forwarded this." || !usageIs(s.usage, 50, 10, 60, 0, 0) {
		t.Fatalf("ConverseStream over h2c: events %s text %q usage %+v", got, s.text, s.usage)
	}
	conv, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId: aws.String(claudeID), Messages: []types.Message{userText("Say hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := outputText(t, conv); text != "Hello from the fake upstream. Junction forwarded this." {
		t.Fatalf("Converse over h2c: %q", text)
	}
	signed := 0
	for _, r := range j.records(5) {
		if r.KeyID == keyID && r.Surface == "bedrock" {
			signed++
		}
	}
	if signed != 2 {
		t.Fatalf("%d of the 5 records are the signed Bedrock calls, want 2", signed)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "junction test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestHTTP2OverTLS: with server.tls set, Junction serves HTTPS and a
// client that offers only HTTP/2 by ALPN gets it, streams included.
func TestHTTP2OverTLS(t *testing.T) {
	up := httptest.NewServer(&fakeopenai.Server{})
	t.Cleanup(up.Close)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	j := runYAML(t, fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, shutdown_timeout: 5s, tls: {cert_file: %q, key_file: %q}}
auth: {admin_key: %q}
log: {level: warn}
providers:
  - {name: openai, type: openai, base_url: "%s/v1", api_key: "sk-upstream"}
models:
  - {name: gpt-4o-mini, provider: openai}
`, dir, certFile, keyFile, adminKey, up.URL), dir)
	base := "https://" + strings.TrimPrefix(j.url, "http://")
	tr := &http.Transport{Protocols: new(http.Protocols), TLSClientConfig: &tls.Config{RootCAs: pool}}
	tr.Protocols.SetHTTP2(true)
	chatOverHTTP2(t, &http.Client{Transport: http2Only{tr}}, base)

	// Cleartext is not served beside TLS.
	if resp, err := http.Get(j.url + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("a cleartext request was served on the TLS listener")
		}
	}
}

// TestTLSCertificateMustLoad: a certificate that does not load stops the
// start, naming server.tls, before anything is opened.
func TestTLSCertificateMustLoad(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, tls: {cert_file: %q, key_file: %q}}
auth: {admin_key: %q}
`, dir, filepath.Join(dir, "missing.pem"), filepath.Join(dir, "missing-key.pem"), adminKey)), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "server.tls") || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("err = %v, want server.tls naming the file", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "junction.db")); err == nil {
		t.Fatal("the database was opened before the certificate was checked")
	}
}
