package server

import (
	"context"
	"fmt"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/platform/config"
)

// newS3 builds the s3:// backend from the s3 section; credentials the
// section leaves out come from the standard AWS chain, on first use.
func newS3(cfg *config.Config) (*blob.S3, error) {
	s := cfg.S3
	b, err := blob.NewS3(context.Background(), blob.S3Options{Endpoint: s.Endpoint, Region: s.Region, PathStyle: s.PathStyle,
		AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, SessionToken: s.SessionToken, PartSize: s.PartSize})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	return b, nil
}
