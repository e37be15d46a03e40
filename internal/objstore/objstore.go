// Package objstore opens the S3-compatible client shared by the audit
// anchor and the recording store: every path to object storage gets its
// TLS settings (s3.use_tls, s3.ca_file) from here.
package objstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/openvisit/openvisit/internal/config"
)

// ErrNotConfigured is returned when no S3 endpoint is configured.
var ErrNotConfigured = errors.New("objstore: no s3.endpoint configured")

// maxCAFile bounds s3.ca_file.
const maxCAFile = 1 << 20

// New returns a client for the configured endpoint.
func New(c config.S3) (*minio.Client, error) {
	opts, err := Options(c)
	if err != nil {
		return nil, err
	}
	cl, err := minio.New(c.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	return cl, nil
}

// Options returns the client options for c: credentials, region, and a
// transport that speaks TLS 1.2+ when s3.use_tls is set, verifying the
// server against s3.ca_file when given (else the system roots). Callers
// that need a minio.Core or other retries start from these.
func Options(c config.S3) (*minio.Options, error) {
	if c.Endpoint == "" {
		return nil, ErrNotConfigured
	}
	tr, err := minio.DefaultTransport(c.UseTLS)
	if err != nil {
		return nil, fmt.Errorf("objstore: transport: %w", err)
	}
	if c.UseTLS {
		if tr.TLSClientConfig, err = TLSConfig(c); err != nil {
			return nil, err
		}
	}
	return &minio.Options{
		Creds:     credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure:    c.UseTLS,
		Region:    c.Region,
		Transport: tr,
	}, nil
}

// TLSConfig returns the client TLS settings for the endpoint: TLS 1.2 or
// later, and only the CA in s3.ca_file as a root when one is configured (a
// private CA), the system roots otherwise.
func TLSConfig(c config.S3) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile == "" {
		return tc, nil
	}
	pool, err := loadCA(c.CAFile)
	if err != nil {
		return nil, err
	}
	tc.RootCAs = pool
	return tc, nil
}

func loadCA(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("objstore: s3.ca_file: %w", err)
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("objstore: s3.ca_file: %w", err)
	}
	if len(pem) > maxCAFile {
		return nil, fmt.Errorf("objstore: s3.ca_file %s: larger than %d bytes", path, maxCAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("objstore: s3.ca_file %s: no PEM certificate in it", path)
	}
	return pool, nil
}
