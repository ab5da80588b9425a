package ledger

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func encodeReference(r *Record) ([]byte, error) {
	var buf bytes.Buffer
	err := json.NewEncoder(&buf).Encode(r)
	return buf.Bytes(), err
}

func TestAppendRecordWritesWhatEncodingJSONWrites(t *testing.T) {
	cost, cf, ttft := 0.000123, 1e-7, 231.5
	full := Record{Time: time.Date(2026, 12, 7, 14, 3, 5, 123456789, time.FixedZone("x", 3600)), RequestID: "j1a<b>", KeyID: "k1",
		KeyName: "search & ranking", Tags: map[string]string{"team": "ml", "app": "faq\u2028", "z": "\xff"}, Surface: "openai",
		Model: "gpt-4o", Provider: "openai", UpstreamModel: "gpt-4o-2024-08-06", Route: "chat", Deployment: "gpt-4o",
		Attempts: 2, RouteReason: "weighted, after 503 from openai", CounterfactualUSD: &cf, Guardrail: "g:1 NONE",
		Stream: true, InputTokens: 19, OutputTokens: 10, CachedTokens: 3, Status: 200, ErrorType: "x", LatencyMS: 12.345,
		TTFTMS: &ttft, CostUSD: &cost, Estimated: true}
	for _, r := range []Record{{}, full, {Time: time.Unix(0, 0).UTC(), LatencyMS: 1e21, Tags: map[string]string{}},
		{LatencyMS: -0.0000001}, {LatencyMS: 123456789.125}} {
		want, werr := encodeReference(&r)
		got, err := appendRecord(nil, &r)
		if (err == nil) != (werr == nil) || (err == nil && string(got) != string(want)) {
			t.Errorf("got  %s (%v)\nwant %s (%v)", got, err, want, werr)
		}
	}
	for _, bad := range []Record{{LatencyMS: math.NaN()}, {LatencyMS: math.Inf(1)}, {Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}} {
		if _, err := appendRecord(nil, &bad); err == nil {
			t.Errorf("%+v encoded; encoding/json refuses it", bad)
		}
	}
}

// FuzzAppendRecord holds the journal's encoder to encoding/json.
func FuzzAppendRecord(f *testing.F) {
	f.Add("j1", "team", "ml", 12.5, 0.0001, int64(1765116185123456789), 3, true)
	f.Add("<&>", "", "", 1e-9, 1e22, int64(-5), 0, false)
	f.Fuzz(func(t *testing.T, id, tag, val string, lat, cost float64, ns int64, attempts int, stream bool) {
		r := Record{Time: time.Unix(0, ns).UTC(), RequestID: id, Tags: map[string]string{tag: val, id: tag}, LatencyMS: lat,
			CostUSD: &cost, Attempts: attempts, Stream: stream, Route: val, Guardrail: tag}
		want, werr := encodeReference(&r)
		got, err := appendRecord(nil, &r)
		if (err == nil) != (werr == nil) || (err == nil && string(got) != string(want)) {
			t.Errorf("got  %s (%v)\nwant %s (%v)", got, err, want, werr)
		}
		checkEncodeTags(t, r.Tags)
	})
}

// checkEncodeTags holds encodeTags, the usage table's tags column, to
// json.Marshal of the map.
func checkEncodeTags(t *testing.T, tags map[string]string) {
	t.Helper()
	want, _ := json.Marshal(tags)
	if len(tags) == 0 {
		want = []byte("{}")
	}
	if got := encodeTags(tags); got != string(want) {
		t.Errorf("encodeTags(%q) = %s, json.Marshal: %s", tags, got, want)
	}
}

func TestEncodeTagsWritesWhatJSONMarshalWrites(t *testing.T) {
	many := map[string]string{}
	for i := range 40 {
		many[string(rune('a'+i%26))+strings.Repeat("k", i)] = strings.Repeat("v<>&\u2028", i)
	}
	for _, tags := range []map[string]string{nil, {}, {"team": "ml"}, {"team": "ml", "app": "faq\u2028", "z": "\xff", "": "<&>"}, many} {
		checkEncodeTags(t, tags)
	}
}
