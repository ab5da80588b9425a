package capture

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/junctionhq/junction/internal/hosting"
)

// Record is one line of a capture object, SageMaker's data-capture
// format: what the endpoint received and answered, and when.
type Record struct {
	CaptureData   CaptureData   `json:"captureData"`
	EventMetadata EventMetadata `json:"eventMetadata"`
	// EventVersion is "0".
	EventVersion string `json:"eventVersion"`
}

// CaptureData holds the captured sides of an invocation; a side the
// config does not capture is absent.
type CaptureData struct {
	EndpointInput  *Payload `json:"endpointInput,omitempty"`
	EndpointOutput *Payload `json:"endpointOutput,omitempty"`
}

// Payload is one captured body.
type Payload struct {
	// ObservedContentType is the body's Content-Type as sent.
	ObservedContentType string `json:"observedContentType"`
	// Mode is INPUT or OUTPUT.
	Mode string `json:"mode"`
	// Data is the body: as it is for CSV and JSON, else base64.
	Data string `json:"data"`
	// Encoding is CSV, JSON or BASE64.
	Encoding string `json:"encoding"`
}

// EventMetadata identifies an invocation.
type EventMetadata struct {
	// EventID is a fresh UUID per record.
	EventID string `json:"eventId"`
	// InferenceID is the caller's X-Amzn-SageMaker-Inference-Id, when
	// it gave one (Model Monitor joins ground truth on it).
	InferenceID string `json:"inferenceId,omitempty"`
	// InferenceTime is when the answer came, in UTC to the second.
	InferenceTime string `json:"inferenceTime"`
}

// Payload encodings and modes.
const (
	EncodingCSV    = "CSV"
	EncodingJSON   = "JSON"
	EncodingBase64 = "BASE64"
	ModeInput      = "INPUT"
	ModeOutput     = "OUTPUT"
)

// timeLayout is inferenceTime's layout, as SageMaker writes it.
const timeLayout = "2006-01-02T15:04:05Z"

// appendLine encodes ev as one line of its object.
func appendLine(buf *bytes.Buffer, ev *event, eventID string) {
	r := Record{EventVersion: "0", EventMetadata: EventMetadata{EventID: eventID, InferenceID: ev.inferenceID,
		InferenceTime: ev.at.UTC().Format(timeLayout)}}
	h := ev.d.CaptureContentTypeHeader
	if ev.input {
		r.CaptureData.EndpointInput = payload(ModeInput, ev.inType, ev.in, h)
	}
	if ev.output {
		r.CaptureData.EndpointOutput = payload(ModeOutput, ev.outType, ev.out, h)
	}
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	enc.Encode(r) // cannot fail: strings only; ends the line
}

// payload encodes a body: as text when its content type is one of the
// config's CSV or JSON types and it is valid UTF-8, else in base64 (also
// SageMaker's rule when the config names no types).
func payload(mode, contentType string, body []byte, h *hosting.CaptureContentTypeHeader) *Payload {
	p := &Payload{ObservedContentType: contentType, Mode: mode, Encoding: EncodingBase64}
	if h != nil && utf8.Valid(body) {
		mt := mediaType(contentType)
		switch {
		case mt != "" && listed(mt, h.CsvContentTypes):
			p.Encoding = EncodingCSV
		case mt != "" && listed(mt, h.JsonContentTypes):
			p.Encoding = EncodingJSON
		}
	}
	if p.Encoding == EncodingBase64 {
		p.Data = base64.StdEncoding.EncodeToString(body)
	} else {
		p.Data = string(body)
	}
	return p
}

// mediaType is a content type without its parameters, lower-cased:
// "text/csv; charset=utf-8" is text/csv.
func mediaType(ct string) string {
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

func listed(mt string, types []string) bool {
	for _, t := range types {
		if mediaType(t) == mt {
			return true
		}
	}
	return false
}

// objectName is where a window's object goes under the destination:
// ENDPOINT/VARIANT/yyyy/mm/dd/hh/mm-ss-mmm-UUID.jsonl, filed by the time
// of its first record, as SageMaker names its capture files.
func objectName(endpoint, variant string, first time.Time) string {
	t := first.UTC()
	return fmt.Sprintf("%s/%s/%s/%02d-%02d-%03d-%s.jsonl", endpoint, variant, t.Format("2006/01/02/15"),
		t.Minute(), t.Second(), t.Nanosecond()/int(time.Millisecond), newEventID())
}

// newEventID returns a random UUID (version 4).
func newEventID() string { return uuid.NewString() }
