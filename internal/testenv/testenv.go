// Package testenv gives tests the real services they need — PostgreSQL,
// MinIO, Chromium — as started by `make services` (deploy/services.sh).
//
// A test whose service is missing is skipped with a clear message on a
// developer's machine, and fails when CI is set, so that nothing in CI passes
// by skipping.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/objstore"
)

// InCI reports whether the tests run under CI, where a missing service is a
// failure rather than a skip.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing skips t, or fails it under CI, because a service is unavailable.
func Missing(t testing.TB, what string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available; run `make services` (or `make test`) to start it", what)
	if InCI() {
		t.Fatal("CI: " + msg)
	}
	t.Skip(msg)
}

// PostgresAdminURL returns the URL of the dev/test server's admin database
// (OPENVISIT_DATABASE_URL, written to .dev/env by make services). With the
// services of make services it asks for verified TLS (sslmode=verify-full,
// sslrootcert= the local CA), which pgx honours; Postgres keeps that query.
func PostgresAdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("OPENVISIT_DATABASE_URL")
	if u == "" {
		Missing(t, "PostgreSQL (OPENVISIT_DATABASE_URL)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		Missing(t, "PostgreSQL ("+err.Error()+")")
	}
	_ = conn.Close(ctx)
	return u
}

// Postgres creates a fresh, empty database for this test and returns its
// URL; the database is dropped when the test ends. Migrations are the
// caller's business (db.Migrate), so migration tests see an empty database.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := PostgresAdminURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "ov_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("testenv: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("testenv: drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("testenv: parse admin url: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// S3 describes the MinIO server started by make services.
type S3 struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	UseTLS    bool
	CAFile    string // PEM of the CA that issued the server's certificate
}

// Config returns the object storage settings for bucket on this server, as
// a process would be configured.
func (s S3) Config(bucket string) config.S3 {
	return config.S3{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
		UseTLS: s.UseTLS, CAFile: s.CAFile, Region: "us-east-1", Bucket: bucket}
}

// Env returns the OPENVISIT_S3_* variables for bucket on this server, for a
// separate openvisit process.
func (s S3) Env(bucket string) []string {
	return []string{
		"OPENVISIT_S3_ENDPOINT=" + s.Endpoint, "OPENVISIT_S3_ACCESS_KEY=" + s.AccessKey,
		"OPENVISIT_S3_SECRET_KEY=" + s.SecretKey, "OPENVISIT_S3_USE_TLS=" + strconv.FormatBool(s.UseTLS),
		"OPENVISIT_S3_CA_FILE=" + s.CAFile, "OPENVISIT_S3_REGION=us-east-1", "OPENVISIT_S3_BUCKET=" + bucket,
	}
}

// MinIO returns the dev/test MinIO settings, after checking it answers
// (over TLS verified against OPENVISIT_S3_CA_FILE, as the server will be).
func MinIO(t testing.TB) S3 {
	t.Helper()
	s := S3{
		Endpoint:  os.Getenv("OPENVISIT_S3_ENDPOINT"),
		AccessKey: os.Getenv("OPENVISIT_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("OPENVISIT_S3_SECRET_KEY"),
		UseTLS:    os.Getenv("OPENVISIT_S3_USE_TLS") == "true",
		CAFile:    os.Getenv("OPENVISIT_S3_CA_FILE"),
	}
	if s.Endpoint == "" {
		Missing(t, "MinIO (OPENVISIT_S3_ENDPOINT)")
	}
	if err := MinIOHealthy(s); err != nil {
		Missing(t, "MinIO at "+s.Endpoint+" ("+err.Error()+")")
	}
	return s
}

// MinIOHealthy asks the server's liveness endpoint through the client
// settings of s (objstore's transport: TLS verified against s.CAFile).
func MinIOHealthy(s S3) error {
	opts, err := objstore.Options(s.Config(""))
	if err != nil {
		return err
	}
	scheme := "http"
	if s.UseTLS {
		scheme = "https"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+s.Endpoint+"/minio/health/live", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: opts.Transport}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s", resp.Status)
	}
	return nil
}

// Chromium returns the path of a Chromium binary for browser tests
// (OV_DEV_CHROMIUM, else /usr/bin/chromium).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("OV_DEV_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, "Chromium (apt-get install -y chromium)")
	return ""
}

// IdP is the development OpenID provider (deploy/dev/devidp) started by
// make services: its issuer, the client registered for OpenVisit, the CA
// that issued its certificate, and the token of its dev-only admin API
// (tests make their own users there and disable them).
type IdP struct {
	Issuer, ClientID, ClientSecret, CAFile, AdminToken string
}

// OIDC returns the dev OpenID provider's settings after checking that it
// answers discovery (over TLS verified against its CA).
func OIDC(t testing.TB) IdP {
	t.Helper()
	p := IdP{Issuer: os.Getenv("OV_DEV_OIDC_ISSUER"), ClientID: os.Getenv("OV_DEV_OIDC_CLIENT_ID"),
		ClientSecret: os.Getenv("OV_DEV_OIDC_CLIENT_SECRET"), CAFile: os.Getenv("OV_DEV_OIDC_CA_FILE"),
		AdminToken: os.Getenv("OV_DEV_OIDC_ADMIN_TOKEN")}
	if p.Issuer == "" || p.ClientSecret == "" || p.AdminToken == "" {
		Missing(t, "the dev OpenID provider (OV_DEV_OIDC_*)")
	}
	resp, err := p.do(http.MethodGet, "/.well-known/openid-configuration", nil)
	if err != nil {
		Missing(t, "the dev OpenID provider at "+p.Issuer+" ("+err.Error()+")")
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		Missing(t, "the dev OpenID provider at "+p.Issuer+" ("+resp.Status+")")
	}
	return p
}

// IdPUser is an account at the dev OpenID provider.
type IdPUser struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Groups   []string `json:"groups"`
	MFA      bool     `json:"mfa"`
}

// AddUser creates (or replaces) u at the provider and returns its subject.
func (p IdP) AddUser(t testing.TB, u IdPUser) string {
	t.Helper()
	body, _ := json.Marshal(u)
	resp, err := p.do(http.MethodPost, "/dev/users", body)
	if err != nil {
		t.Fatalf("testenv: idp add user: %v", err)
	}
	defer resp.Body.Close()
	var out struct{ Sub string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("testenv: idp add user: %s", resp.Status)
	}
	return out.Sub
}

// DisableUser deprovisions username at the provider: it can no longer sign
// in, and its refresh tokens are refused.
func (p IdP) DisableUser(t testing.TB, username string) {
	t.Helper()
	resp, err := p.do(http.MethodPost, "/dev/users/"+url.PathEscape(username)+"/disable", nil)
	if err != nil {
		t.Fatalf("testenv: idp disable: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("testenv: idp disable: %s", resp.Status)
	}
}

// RotateKeys makes the provider sign with a new key (the old one stays in
// its JWKS).
func (p IdP) RotateKeys(t testing.TB) {
	t.Helper()
	resp, err := p.do(http.MethodPost, "/dev/keys/rotate", nil)
	if err != nil {
		t.Fatalf("testenv: idp rotate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("testenv: idp rotate: %s", resp.Status)
	}
}

func (p IdP) do(method, path string, body []byte) (*http.Response, error) {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(p.CAFile); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest(method, p.Issuer+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	return c.Do(req)
}
