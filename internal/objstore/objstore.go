// Package objstore opens the S3-compatible client shared by the audit
// anchor and the recording store.
package objstore

import (
	"errors"
	"fmt"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/openvisit/openvisit/internal/config"
)

// ErrNotConfigured is returned when no S3 endpoint is configured.
var ErrNotConfigured = errors.New("objstore: no s3.endpoint configured")

// New returns a client for the configured endpoint.
func New(c config.S3) (*minio.Client, error) {
	if c.Endpoint == "" {
		return nil, ErrNotConfigured
	}
	cl, err := minio.New(c.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure: c.UseTLS,
		Region: c.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	return cl, nil
}
