// Package testenv gives tests the real services they need — PostgreSQL,
// MinIO, Chromium — as started by `make services` (deploy/services.sh).
//
// A test whose service is missing is skipped with a clear message on a
// developer's machine, and fails when CI is set, so that nothing in CI passes
// by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
