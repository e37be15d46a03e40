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
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
// (OPENVISIT_DATABASE_URL, written to .dev/env by make services).
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
}

// MinIO returns the dev/test MinIO settings, after checking it answers.
func MinIO(t testing.TB) S3 {
	t.Helper()
	s := S3{
		Endpoint:  os.Getenv("OPENVISIT_S3_ENDPOINT"),
		AccessKey: os.Getenv("OPENVISIT_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("OPENVISIT_S3_SECRET_KEY"),
		UseTLS:    os.Getenv("OPENVISIT_S3_USE_TLS") == "true",
	}
	if s.Endpoint == "" {
		Missing(t, "MinIO (OPENVISIT_S3_ENDPOINT)")
	}
	scheme := "http"
	if s.UseTLS {
		scheme = "https"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+s.Endpoint+"/minio/health/live", nil)
	if err != nil {
		t.Fatalf("testenv: minio: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		Missing(t, "MinIO at "+s.Endpoint)
		return s
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		Missing(t, "MinIO at "+s.Endpoint)
	}
	return s
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
