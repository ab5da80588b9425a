package modelserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// The batch contract (docs/batching.md): POST /invocations with
// {"instances": [item, ...]} as application/json, answered
// {"predictions": [...], "errors": [...]}; or one item per line as
// application/jsonlines, answered one line per item, {"prediction": ...}
// or {"error": {...}}. Each item is what a single invocation's body would
// be, and its prediction is exactly the body that invocation would get;
// an item that would have failed alone fails alone.

const typeJSONLines = "application/jsonlines"

// maxBatchItems bounds a batch.
const maxBatchItems = 4096

// itemError is one item's failure in a batch answer.
type itemError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// batchLog keeps the sizes of the last batches served, for GET /stats.
type batchLog struct {
	mu    sync.Mutex
	sizes []int
	total int64
}

const batchLogLen = 4096

func (b *batchLog) add(n int) {
	b.mu.Lock()
	if len(b.sizes) == batchLogLen {
		b.sizes = append(b.sizes[:0], b.sizes[1:]...)
	}
	b.sizes = append(b.sizes, n)
	b.total++
	b.mu.Unlock()
}

func (b *batchLog) snapshot() ([]int, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int{}, b.sizes...), b.total
}

// isInstances reports whether a JSON body is a batch: an object whose
// first key is "instances".
func isInstances(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	t, err := dec.Token()
	return err == nil && t == "instances"
}

// invokeBatch answers a batch in format (typeJSON for instances, or
// typeJSONLines).
func (s *server) invokeBatch(w http.ResponseWriter, l *loaded, body []byte, format string) {
	items, err := splitBatch(body, format)
	if err != nil {
		plainError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.spend(len(items))
	s.batches.add(len(items))
	preds := make([][]byte, len(items))
	errs := make([]*itemError, len(items))
	for i, it := range items {
		preds[i], errs[i] = s.answerItem(l, it)
	}
	var out []byte
	if format == typeJSONLines {
		for i := range items {
			if errs[i] != nil {
				e, _ := json.Marshal(struct {
					Error *itemError `json:"error"`
				}{errs[i]})
				out = append(out, e...)
			} else {
				out = append(out, `{"prediction":`...)
				out = append(out, preds[i]...)
				out = append(out, '}')
			}
			out = append(out, '\n')
		}
	} else {
		out = append(out, `{"predictions":[`...)
		failed := false
		for i := range items {
			if i > 0 {
				out = append(out, ',')
			}
			if errs[i] != nil {
				failed = true
				out = append(out, "null"...)
			} else {
				out = append(out, preds[i]...)
			}
		}
		out = append(out, ']')
		if failed {
			e, _ := json.Marshal(errs)
			out = append(out, `,"errors":`...)
			out = append(out, e...)
		}
		out = append(out, "}\n"...)
	}
	w.Header().Set("Content-Type", format)
	w.Write(out)
}

// splitBatch returns a batch's items.
func splitBatch(body []byte, format string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	if format == typeJSONLines {
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, maxBody)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				items = append(items, append(json.RawMessage(nil), line...))
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	} else {
		var doc struct {
			Instances []json.RawMessage `json:"instances"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			return nil, errBatch("the body is not a valid batch (" + err.Error() + `): send {"instances": [invocation, ...]}`)
		}
		items = doc.Instances
	}
	if len(items) == 0 {
		return nil, errBatch("the batch holds no items")
	}
	if len(items) > maxBatchItems {
		return nil, errBatch("the batch holds more than 4096 items")
	}
	return items, nil
}

type errBatch string

func (e errBatch) Error() string { return string(e) }

// answerItem answers one item as a single JSON invocation would be
// answered.
func (s *server) answerItem(l *loaded, item []byte) ([]byte, *itemError) {
	inv, err := parseInvocation(item)
	if err != nil {
		return nil, &itemError{Status: http.StatusBadRequest, Message: err.Error()}
	}
	var out []byte
	if inv.task == taskClassify {
		out = classify(nil, l, inv.inputs, typeJSON)
	} else {
		out = generate(nil, l, inv, typeJSON)
	}
	return bytes.TrimSpace(out), nil
}

// spend holds the server's one device for a call's cost: the fixed part
// plus the per-item part for items. Calls spend one at a time, as a GPU
// runs one batch at a time, so that batching pays off here as it does
// there.
func (s *server) spend(items int) {
	d := s.cfg.callCost + time.Duration(items)*s.cfg.itemCost
	if d <= 0 {
		return
	}
	s.device.Lock()
	time.Sleep(d)
	s.device.Unlock()
}
