package objstore_test

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/certs"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/objstore"
	"github.com/openvisit/openvisit/internal/testenv"
)

// TestTLSVerifiesServer talks to the dev/test MinIO as production talks to
// S3: over HTTPS verified against s3.ca_file. Another CA, the system roots
// alone, or plain HTTP all fail.
func TestTLSVerifiesServer(t *testing.T) {
	s := testenv.MinIO(t)
	if !s.UseTLS || s.CAFile == "" {
		testenv.Missing(t, "MinIO over TLS (OPENVISIT_S3_USE_TLS=true, OPENVISIT_S3_CA_FILE; make services)")
	}
	list := func(c config.S3) error {
		opts, err := objstore.Options(c)
		if err != nil {
			return err
		}
		opts.MaxRetries = 1 // the failures below are not worth retrying
		cl, err := minio.New(c.Endpoint, opts)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = cl.ListBuckets(ctx)
		return err
	}
	if err := list(s.Config("")); err != nil {
		t.Fatalf("with the services' CA: %v", err)
	}

	other := t.TempDir()
	if _, err := certs.LocalCA(other, []string{"localhost", "127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	wrong := s.Config("")
	wrong.CAFile = filepath.Join(other, certs.CAFile)
	err := list(wrong)
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		t.Errorf("with another CA: %v, want x509.UnknownAuthorityError", err)
	}
	system := s.Config("")
	system.CAFile = ""
	if err := list(system); err == nil {
		t.Error("verified against the system roots: the server's certificate is not from the local CA")
	}
	plain := s.Config("")
	plain.UseTLS, plain.CAFile = false, ""
	if err := list(plain); err == nil {
		t.Error("plain HTTP to the TLS port succeeded")
	}
}

func TestCAFileErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct{ path, want string }{
		"missing": {filepath.Join(dir, "absent.pem"), "s3.ca_file"},
		"not PEM": {notPEM, "no PEM certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := objstore.New(config.S3{Endpoint: "127.0.0.1:9", UseTLS: true, CAFile: tt.path})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}
