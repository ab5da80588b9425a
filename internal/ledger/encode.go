package ledger

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/wire/jsonenc"
)

// appendRecord appends r as one JSON line, the bytes json.Encoder writes
// for it (encode_test.go holds it to that), without reflection: the
// journal writes one on every request's path.
func appendRecord(b []byte, r *Record) ([]byte, error) {
	b = append(b, `{"time":`...)
	if y := r.Time.Year(); y < 0 || y >= 10000 {
		// json.Marshal refuses such times; so does the journal.
		return b, &time.ParseError{Layout: time.RFC3339Nano, Message: ": year outside of range [0,9999]"}
	}
	b = append(b, '"')
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "request_id", r.RequestID)
	b = appendField(b, "key_id", r.KeyID)
	b = appendField(b, "key_name", r.KeyName)
	if len(r.Tags) > 0 {
		b = append(b, `,"tags":`...)
		b = appendTags(b, r.Tags)
	}
	b = appendField(b, "surface", r.Surface)
	b = appendField(b, "model", r.Model)
	b = appendField(b, "provider", r.Provider)
	b = appendField(b, "upstream_model", r.UpstreamModel)
	if r.Route != "" {
		b = appendField(b, "route", r.Route)
	}
	if r.Deployment != "" {
		b = appendField(b, "deployment", r.Deployment)
	}
	if r.Attempts != 0 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(r.Attempts), 10)
	}
	if r.RouteReason != "" {
		b = appendField(b, "route_reason", r.RouteReason)
	}
	var err error
	if r.CounterfactualUSD != nil {
		b = append(b, `,"counterfactual_cost_usd":`...)
		if b, err = appendFloat(b, *r.CounterfactualUSD); err != nil {
			return b, err
		}
	}
	if r.Guardrail != "" {
		b = appendField(b, "guardrail", r.Guardrail)
	}
	b = append(b, `,"stream":`...)
	b = strconv.AppendBool(b, r.Stream)
	b = append(b, `,"input_tokens":`...)
	b = strconv.AppendInt(b, int64(r.InputTokens), 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(r.OutputTokens), 10)
	b = append(b, `,"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(r.CachedTokens), 10)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	if r.ErrorType != "" {
		b = appendField(b, "error_type", r.ErrorType)
	}
	b = append(b, `,"latency_ms":`...)
	if b, err = appendFloat(b, r.LatencyMS); err != nil {
		return b, err
	}
	if r.TTFTMS != nil {
		b = append(b, `,"ttft_ms":`...)
		if b, err = appendFloat(b, *r.TTFTMS); err != nil {
			return b, err
		}
	}
	if r.CostUSD != nil {
		b = append(b, `,"cost_usd":`...)
		if b, err = appendFloat(b, *r.CostUSD); err != nil {
			return b, err
		}
	}
	if r.Estimated {
		b = append(b, `,"estimated":true`...)
	}
	return append(b, "}\n"...), nil
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return jsonenc.AppendString(b, value)
}

// appendFloat appends f as encoding/json writes a float64: the shortest
// decimal that reads back as f, in exponent form below 1e-6 and from 1e21
// on (with a one-digit negative exponent written e-7, not e-07). NaN and
// the infinities have no JSON form.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, &strconv.NumError{Func: "appendFloat", Num: strconv.FormatFloat(f, 'g', -1, 64), Err: strconv.ErrRange}
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendTags appends tags as a JSON object, keys sorted: the bytes
// json.Marshal writes for the map.
func appendTags(b []byte, tags map[string]string) []byte {
	var small [8]string
	keys := small[:0]
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		b = jsonenc.AppendString(b, tags[k])
	}
	return append(b, '}')
}
