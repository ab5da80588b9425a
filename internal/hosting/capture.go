package hosting

import (
	"fmt"
	"mime"
	"time"

	"github.com/junctionhq/junction/internal/blob"
)

// DataCapture records a sampled share of an endpoint's invocations — the
// request, the answer or both — as SageMaker's DataCaptureConfig does:
// JSON Lines objects under Destination, one object per time window,
// written off the invocation's path (package capture). Real-time and
// async invocations are captured alike; streamed answers are not.
type DataCapture struct {
	// EnableCapture turns capture off while keeping the settings; unset
	// means on.
	EnableCapture *bool `json:"enable_capture,omitempty"`
	// InitialSamplingPercentage is the share of invocations captured, 0
	// to 100 (required).
	InitialSamplingPercentage *int `json:"initial_sampling_percentage"`
	// DestinationS3URI is the prefix captured objects are written under:
	// s3://bucket/prefix, or file:///dir.
	DestinationS3URI string `json:"destination_s3_uri"`
	// CaptureOptions say what is captured: Input, Output, or both
	// (InputAndOutput, or one option of each).
	CaptureOptions []CaptureOption `json:"capture_options"`
	// CaptureContentTypeHeader names the content types captured as text
	// (encoding CSV or JSON); any other payload is captured in base64.
	CaptureContentTypeHeader *CaptureContentTypeHeader `json:"capture_content_type_header,omitempty"`
}

// CaptureOption is one CaptureMode.
type CaptureOption struct {
	// CaptureMode is Input, Output or InputAndOutput.
	CaptureMode string `json:"capture_mode"`
}

// Capture modes.
const (
	CaptureInput          = "Input"
	CaptureOutput         = "Output"
	CaptureInputAndOutput = "InputAndOutput"
)

// CaptureContentTypeHeader lists the content types captured as text.
type CaptureContentTypeHeader struct {
	CsvContentTypes  []string `json:"csv_content_types,omitempty"`
	JsonContentTypes []string `json:"json_content_types,omitempty"`
}

// Enabled reports whether the settings capture anything.
func (d *DataCapture) Enabled() bool {
	return d != nil && (d.EnableCapture == nil || *d.EnableCapture) &&
		d.InitialSamplingPercentage != nil && *d.InitialSamplingPercentage > 0
}

// Percent is the sampling percentage.
func (d *DataCapture) Percent() int {
	if d == nil || d.InitialSamplingPercentage == nil {
		return 0
	}
	return *d.InitialSamplingPercentage
}

// Modes reports whether requests and answers are captured.
func (d *DataCapture) Modes() (input, output bool) {
	for _, o := range d.CaptureOptions {
		switch o.CaptureMode {
		case CaptureInput:
			input = true
		case CaptureOutput:
			output = true
		case CaptureInputAndOutput:
			input, output = true, true
		}
	}
	return input, output
}

// validate checks the settings.
func (d *DataCapture) validate() []string {
	if d == nil {
		return nil
	}
	var errs []string
	switch p := d.InitialSamplingPercentage; {
	case p == nil:
		errs = append(errs, "data_capture.initial_sampling_percentage: required, 0 to 100")
	case *p < 0 || *p > 100:
		errs = append(errs, fmt.Sprintf("data_capture.initial_sampling_percentage: %d must be between 0 and 100", *p))
	}
	if d.DestinationS3URI == "" {
		errs = append(errs, "data_capture.destination_s3_uri: required (s3://bucket/prefix or file:///dir)")
	} else if _, err := blob.ParseLocation(d.DestinationS3URI); err != nil {
		errs = append(errs, fmt.Sprintf("data_capture.destination_s3_uri: %v", err))
	}
	if n := len(d.CaptureOptions); n < 1 || n > 32 {
		errs = append(errs, fmt.Sprintf("data_capture.capture_options: %d options; give 1 to 32, each with capture_mode Input, Output or InputAndOutput", n))
	}
	for i, o := range d.CaptureOptions {
		switch o.CaptureMode {
		case CaptureInput, CaptureOutput, CaptureInputAndOutput:
		default:
			errs = append(errs, fmt.Sprintf("data_capture.capture_options[%d].capture_mode: %q must be Input, Output or InputAndOutput", i, o.CaptureMode))
		}
	}
	if h := d.CaptureContentTypeHeader; h != nil {
		for field, types := range map[string][]string{"csv_content_types": h.CsvContentTypes, "json_content_types": h.JsonContentTypes} {
			if len(types) > 10 {
				errs = append(errs, fmt.Sprintf("data_capture.capture_content_type_header.%s: %d types; at most 10", field, len(types)))
			}
			for i, t := range types {
				if _, _, err := mime.ParseMediaType(t); err != nil || len(t) > 256 {
					errs = append(errs, fmt.Sprintf("data_capture.capture_content_type_header.%s[%d]: %q is not a content type such as text/csv", field, i, t))
				}
			}
		}
	}
	return errs
}

// Capturer receives the invocations an endpoint config's DataCapture
// may capture: each one that was answered, with the config's settings.
// It samples and records them off the caller's path: Capture must not
// block, and must not change inv or res, which it may keep.
type Capturer interface {
	Capture(d *DataCapture, inv *Invocation, res *Result, at time.Time)
}

// capture hands an answered invocation to the Capturer when the fleet's
// config captures traffic. With capture off it costs one nil check.
func (p *plane) capture(f *fleet, inv *Invocation, res *Result) {
	if d := f.config.DataCapture; d != nil && p.opts.Capture != nil && d.Enabled() {
		p.opts.Capture.Capture(d, inv, res, time.Now())
	}
}
