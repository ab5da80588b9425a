package hosting

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/junctionhq/junction/internal/hosting/batcher"
)

// Content types of the batch formats.
const (
	typeJSON      = "application/json"
	typeJSONLines = "application/jsonlines"
)

// itemError is a model server's error for one item of a batch.
type itemError struct {
	// Status is the HTTP status the item would have had alone (default
	// 500).
	Status  int    `json:"status,omitempty"`
	Message string `json:"message"`
}

func (e *itemError) status() int {
	if e.Status >= 400 && e.Status <= 599 {
		return e.Status
	}
	return http.StatusInternalServerError
}

// itemResult is one decoded item of a batch answer.
type itemResult struct {
	batcher.Result
	itemErr *itemError
}

// encodeBatch writes items (each one JSON value) in format.
func encodeBatch(format string, items [][]byte) ([]byte, string) {
	size := 16
	for _, it := range items {
		size += len(it) + 1
	}
	b := make([]byte, 0, size)
	if format == BatchJSONLines {
		for _, it := range items {
			b = appendCompact(b, it)
			b = append(b, '\n')
		}
		return b, typeJSONLines
	}
	b = append(b, `{"instances":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, bytes.TrimSpace(it)...)
	}
	return append(b, "]}"...), typeJSON
}

// appendCompact appends a JSON value on one line.
func appendCompact(b, v []byte) []byte {
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return append(b, bytes.TrimSpace(v)...)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return append(b, bytes.TrimSpace(v)...)
	}
	return append(b, buf.Bytes()...)
}

// decodeBatch splits a batch answer into n items' results.
func decodeBatch(format string, body []byte, n int) ([]itemResult, error) {
	if format == BatchJSONLines {
		return decodeLines(body, n)
	}
	var doc struct {
		Predictions []json.RawMessage `json:"predictions"`
		Errors      []*itemError      `json:"errors"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf(`want {"predictions": [...]}: %v`, err)
	}
	if len(doc.Predictions) != n {
		return nil, fmt.Errorf("%d predictions for %d instances", len(doc.Predictions), n)
	}
	if doc.Errors != nil && len(doc.Errors) != n {
		return nil, fmt.Errorf("%d errors for %d instances: errors, when given, has one entry (null or an error) per instance", len(doc.Errors), n)
	}
	out := make([]itemResult, n)
	for i, p := range doc.Predictions {
		if doc.Errors != nil && doc.Errors[i] != nil {
			out[i].itemErr = doc.Errors[i]
			continue
		}
		out[i].Body = p
	}
	return out, nil
}

// decodeLines reads one answer line per item.
func decodeLines(body []byte, n int) ([]itemResult, error) {
	out := make([]itemResult, 0, n)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, maxResponseBytes)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var doc struct {
			Prediction json.RawMessage `json:"prediction"`
			Error      *itemError      `json:"error"`
		}
		if err := json.Unmarshal(line, &doc); err != nil {
			return nil, fmt.Errorf(`line %d: want {"prediction": ...} or {"error": {...}}: %v`, len(out)+1, err)
		}
		var r itemResult
		switch {
		case doc.Error != nil:
			r.itemErr = doc.Error
		case doc.Prediction != nil:
			r.Body = append([]byte(nil), doc.Prediction...)
		default:
			return nil, fmt.Errorf(`line %d: want {"prediction": ...} or {"error": {...}}`, len(out)+1)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("%d answer lines for %d items", len(out), n)
	}
	return out, nil
}
