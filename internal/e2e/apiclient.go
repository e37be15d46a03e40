package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// APIClient calls the API as one session stored directly in the database,
// for tests that set up their principals without signing in through pages.
type APIClient struct {
	t      testing.TB
	base   string
	Cookie string // the session cookie's value (to hand to a browser)
	csrf   string
	http   *http.Client
}

// APIResponse is what a call answered.
type APIResponse struct {
	Status int
	Body   []byte
	Header http.Header
	// ReadErr: the body did not arrive whole (the server aborted it).
	ReadErr error
}

// NewAPIClient stores s (only its hash) in pool and returns a client for
// the API at base; csrf derives the session's CSRF token from that hash.
func NewAPIClient(t testing.TB, base string, pool *pgxpool.Pool, s store.NewSession, csrf func(hash []byte) string) *APIClient {
	t.Helper()
	plain, hash, err := session.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	s.IDHash, s.Now = hash, time.Now()
	if err := store.CreateSession(context.Background(), pool, s); err != nil {
		t.Fatal(err)
	}
	return &APIClient{t: t, base: base, Cookie: plain, csrf: csrf(hash),
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the server's self-signed test certificate
		}}}
}

// Do sends body (JSON, when not nil) with the session cookie, a same-origin
// Origin and the CSRF token, plus any extra headers.
func (c *APIClient) Do(method, path string, body any, hdr map[string]string) APIResponse {
	c.t.Helper()
	req := BrowserRequest(c.t, method, c.base, path, c.csrf, body, hdr)
	req.AddCookie(&http.Cookie{Name: signaling.SessionCookie, Value: c.Cookie})
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return APIResponse{Status: resp.StatusCode, Body: b, Header: resp.Header, ReadErr: rerr}
}

// BrowserRequest is a request to origin+path as the pages send one: body
// as JSON (when not nil), a same-origin Origin, the CSRF token (when
// csrf is not empty) and any extra headers.
func BrowserRequest(t testing.TB, method, origin, path, csrf string, body any, hdr map[string]string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, origin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Origin", origin)
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return req
}
