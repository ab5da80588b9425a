package modelserver

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/junctionhq/junction/internal/hosting/refmodel"
	"github.com/junctionhq/junction/internal/wire/jsonenc"
)

// BenchmarkInvokeClassify measures one JSON classify invocation over
// loopback HTTP with a keep-alive client, the path Junction's proxy takes.
func BenchmarkInvokeClassify(b *testing.B) {
	ts := start(b, nil)
	body := []byte(`{"inputs": "I was charged twice for the same month, please refund"}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", ts.url+"/invocations", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkClassifyHandlerWork measures what the handler adds around the
// model: decoding, classifying and encoding one JSON invocation, no HTTP.
func BenchmarkClassifyHandlerWork(b *testing.B) {
	m, err := refmodel.Load(artifactDir)
	if err != nil {
		b.Fatal(err)
	}
	l := &loaded{model: m, labels: m.Labels()}
	for _, label := range l.labels {
		l.quoted = append(l.quoted, jsonenc.AppendString(nil, label))
	}
	body := []byte(`{"inputs": "I was charged twice for the same month, please refund"}`)
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		inv, err := parseInvocation(body)
		if err != nil {
			b.Fatal(err)
		}
		out = classify(out[:0], l, inv.inputs, typeJSON)
	}
}

// BenchmarkModelClassify is the model alone, for comparison.
func BenchmarkModelClassify(b *testing.B) {
	m, err := refmodel.Load(artifactDir)
	if err != nil {
		b.Fatal(err)
	}
	probs := make([]float64, m.NumLabels())
	b.ReportAllocs()
	for b.Loop() {
		m.ClassifyInto("I was charged twice for the same month, please refund", probs)
	}
}
