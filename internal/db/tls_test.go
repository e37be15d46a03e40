package db

import (
	"context"
	"crypto/x509"
	"errors"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/certs"
	"github.com/openvisit/openvisit/internal/testenv"
)

// TestTLSVerifiesServer connects to the dev/test PostgreSQL the way
// production does (sslmode=verify-full against the CA in sslrootcert): with
// its CA the pool opens over TLS; with another CA, or without TLS, it does
// not.
func TestTLSVerifiesServer(t *testing.T) {
	admin := testenv.PostgresAdminURL(t)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("sslmode") != "verify-full" || q.Get("sslrootcert") == "" {
		testenv.Missing(t, "PostgreSQL over verified TLS (OPENVISIT_DATABASE_URL with sslmode=verify-full&sslrootcert=; make services)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	with := func(set map[string]string) string {
		q := u.Query()
		for k, v := range set {
			q.Set(k, v)
		}
		v := *u
		v.RawQuery = q.Encode()
		return v.String()
	}

	pool, err := Open(ctx, admin, 1)
	if err != nil {
		t.Fatalf("open with the services' CA: %v", err)
	}
	var ssl bool
	err = pool.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl)
	pool.Close()
	if err != nil || !ssl {
		t.Fatalf("connection is not TLS (ssl=%v, %v)", ssl, err)
	}

	other := t.TempDir()
	if _, err := certs.LocalCA(other, []string{"localhost", "127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, with(map[string]string{"sslrootcert": filepath.Join(other, certs.CAFile)}), 1)
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		t.Errorf("open with another CA = %v, want x509.UnknownAuthorityError", err)
	}
	// The same name, checked against the system roots only.
	if _, err = Open(ctx, with(map[string]string{"sslrootcert": "system"}), 1); err == nil {
		t.Error("open verified against the system roots succeeded: the server's certificate is not from the local CA")
	}
	// The server refuses plaintext TCP (pg_hba.conf hostssl only).
	if _, err = Open(ctx, with(map[string]string{"sslmode": "disable"}), 1); err == nil {
		t.Error("the server accepted a plaintext TCP connection")
	}
}
