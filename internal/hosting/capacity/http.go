package capacity

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// BenchTags is the X-Junction-Tags value of every request a measurement
// sends through Junction, so that its traffic can be told apart in the
// ledger.
const BenchTags = "bench=capacity"

// Junction reaches self-hosted endpoints through a Junction server, the
// way its clients do: the measurement includes Junction's own routing.
type Junction struct {
	// URL is the server's base URL; Key a Junction key sent as a bearer
	// token.
	URL, Key string
	// Client sends the requests; see HTTPClient.
	Client *http.Client
}

// HTTPClient returns a client that keeps up to conns connections open to
// one host, so that a step of conns concurrent requests does not open and
// close connections as it goes (the default transport keeps two), and
// gives up on a request after timeout.
func HTTPClient(conns int, timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = max(conns, t.MaxIdleConns)
	t.MaxIdleConnsPerHost = conns
	return &http.Client{Transport: t, Timeout: timeout}
}

// Invocations calls endpoint through the SageMaker runtime surface, POST
// /endpoints/{endpoint}/invocations, with the body's contentType; variant,
// when set, is sent as X-Amzn-SageMaker-Target-Variant. Any answer but a
// 2xx is a failure.
func (j *Junction) Invocations(endpoint, variant, contentType string) Invoke {
	u := strings.TrimRight(j.URL, "/") + "/endpoints/" + url.PathEscape(endpoint) + "/invocations"
	h := http.Header{"Content-Type": {contentType}, "Accept": {"*/*"}}
	if variant != "" {
		h.Set("X-Amzn-SageMaker-Target-Variant", variant)
	}
	return j.post(u, h)
}

// ChatCompletions calls the gateway's POST /v1/chat/completions with the
// body as given; its model field names the endpoint.
func (j *Junction) ChatCompletions() Invoke {
	return j.post(strings.TrimRight(j.URL, "/")+"/v1/chat/completions", http.Header{"Content-Type": {"application/json"}})
}

func (j *Junction) post(u string, h http.Header) Invoke {
	h = h.Clone()
	h.Set("Authorization", "Bearer "+j.Key)
	h.Set("X-Junction-Tags", BenchTags)
	client := j.Client
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context, body []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header = h.Clone()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			// Read to the end: the latency is the whole answer's, and the
			// connection goes back to the pool.
			_, err := io.Copy(io.Discard, resp.Body)
			return err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		io.Copy(io.Discard, resp.Body)
		kind := resp.Header.Get("X-Amzn-ErrorType")
		if kind != "" {
			kind, _, _ = strings.Cut(kind, ":")
			kind += ": "
		}
		return fmt.Errorf("HTTP %d: %s%s", resp.StatusCode, kind, strings.TrimSpace(string(msg)))
	}
}
