package server

import (
	"log/slog"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/hosting/capture"
	"github.com/junctionhq/junction/internal/platform/config"
)

// newCapture builds the writer of captured traffic: hosting hands it the
// invocations of endpoints whose config has data_capture, and it writes
// them as objects at file:// and s3:// URIs.
func newCapture(cfg *config.Config, log *slog.Logger) (*capture.Writer, error) {
	s3, err := newS3(cfg)
	if err != nil {
		return nil, err
	}
	return capture.New(&blob.Objects{S3: s3}, capture.Options{Window: cfg.Capture.Window, BufferBytes: cfg.Capture.BufferBytes, Log: log}), nil
}
