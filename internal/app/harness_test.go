package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/e2e"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/signaling"
)

// clock is a settable clock shared by the server and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// server is a real OpenVisit process (api + media) over TLS on loopback
// with an injected clock.
type server struct {
	URL   string
	App   *app.App
	Pool  *pgxpool.Pool // a separate pool for the test's own queries
	Clock *clock
	logs  *bytes.Buffer
	mu    sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func startServer(t *testing.T) *server {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith lets a test adjust the configuration first.
func startServerWith(t *testing.T, mutate func(*config.Config)) *server {
	t.Helper()
	dsn := testenv.Postgres(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{URL: "https://" + ln.Addr().String(), Clock: &clock{t: time.Now().Truncate(time.Second)}, logs: &bytes.Buffer{}}
	cfg := config.Default()
	cfg.Environment = config.Development
	cfg.Roles = []string{config.RoleAPI, config.RoleMedia}
	cfg.Database.URL = dsn
	cfg.DataDir = t.TempDir()
	cfg.ListenAddr = ln.Addr().String()
	cfg.PublicURL = s.URL
	cfg.SFU.UDPAddr = "127.0.0.1:0"
	cfg.HTTP.OpsAddr = "127.0.0.1:0" // many servers share the machine
	cfg.Media.LoopbackOnly = true
	if mutate != nil {
		mutate(&cfg)
		s.URL = cfg.PublicURL // onLocalhost names the same listener
	}
	log := slog.New(slog.NewTextHandler(lockedWriter{&s.mu, s.logs}, nil))
	ctx := context.Background()
	s.App, err = app.New(ctx, cfg, app.Options{Logger: log, Now: s.Clock.Now, ConfigureWebRTC: e2e.LoopbackWebRTC})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	go func() { _ = s.App.Serve(ln) }()
	if s.Pool, err = db.Open(ctx, dsn, 4); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Pool.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.App.Shutdown(sctx)
		if t.Failed() {
			s.mu.Lock()
			t.Logf("server log:\n%s", s.logs.String())
			s.mu.Unlock()
		}
	})
	return s
}

// onLocalhost serves the test server as https://localhost:PORT instead of
// its IP address: a WebAuthn relying party ID (passkeys) must be a host
// name, never an IP address.
func onLocalhost(c *config.Config) {
	c.PublicURL = strings.Replace(c.PublicURL, "://127.0.0.1:", "://localhost:", 1)
}

// client is one browser-like caller: cookie jar, Origin and CSRF header.
type client struct {
	t    *testing.T
	s    *server
	http *http.Client
	csrf string
	// headersOnly returns once the response headers arrive (for event
	// streams that never end).
	headersOnly bool
}

func (s *server) newClient(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, s: s, http: &http.Client{
		Jar:     jar,
		Timeout: 20 * time.Second,
		// Every exchange is checked against the OpenAPI description (spec_test.go).
		Transport: specTransport{t: t, next: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}, // self-signed test certificate
	}}
}

type response struct {
	Status int
	Body   []byte
	Header http.Header
}

func (r response) code() string {
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// do sends one request as the browser would: a JSON body, its Origin and
// its CSRF token.
func (c *client) do(method, path string, body any) response {
	c.t.Helper()
	return c.doWith(method, path, body, nil)
}

// doWith sends one request like c.do, with extra headers.
func (c *client) doWith(method, path string, body any, hdr map[string]string) response {
	c.t.Helper()
	req := e2e.BrowserRequest(c.t, method, c.s.URL, path, c.csrf, body, hdr)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if c.headersOnly && resp.StatusCode == http.StatusOK {
		return response{Status: resp.StatusCode, Header: resp.Header}
	}
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

// staff is an enrolled provider or admin the test can sign in as.
type staff struct {
	ID       ids.UserID
	Email    string
	Password string
	Secret   string // TOTP secret
	Recovery []string
}

const testPassword = "gingko lantern orbit tidepool"

// enrol creates a user and walks the real setup flow (begin, complete with a
// TOTP code). The clock then moves past the enrolment code's step so the
// next sign-in can use a fresh code.
func (s *server) enrol(t *testing.T, email, role string) staff {
	t.Helper()
	ctx := context.Background()
	u, err := store.CreateUser(ctx, s.Pool, email, "Test "+role, role)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := store.CreateSetupLink(ctx, s.Pool, u.ID, store.PurposeInvite, s.Clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := s.newClient(t)
	r := c.do("POST", "/api/v1/setup/begin", map[string]string{"token": secret})
	if r.Status != 200 {
		t.Fatalf("setup begin: %d %s", r.Status, r.Body)
	}
	var begin struct{ Secret string }
	r.decode(t, &begin)
	code, _ := totp.Code(begin.Secret, s.Clock.Now())
	r = c.do("POST", "/api/v1/setup/complete", map[string]string{"token": secret, "password": testPassword, "code": code})
	if r.Status != 200 {
		t.Fatalf("setup complete: %d %s", r.Status, r.Body)
	}
	var done struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.decode(t, &done)
	s.Clock.Advance(totp.Period)
	return staff{ID: u.ID, Email: email, Password: testPassword, Secret: begin.Secret, Recovery: done.RecoveryCodes}
}

// login signs c in as u with a TOTP code for the current clock.
func (c *client) login(u staff) response {
	c.t.Helper()
	code, _ := totp.Code(u.Secret, c.s.Clock.Now())
	r := c.do("POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": u.Password, "code": code})
	if r.Status == 200 {
		var v signaling.SessionView
		r.decode(c.t, &v)
		c.csrf = v.CSRFToken
	}
	return r
}

func (c *client) mustLogin(u staff) {
	c.t.Helper()
	if r := c.login(u); r.Status != 200 {
		c.t.Fatalf("login %s: %d %s", u.Email, r.Status, r.Body)
	}
	c.s.Clock.Advance(totp.Period) // the next sign-in needs a new step
}

// providerJoin signs a new provider in, starts an instant visit and joins
// it: the join grant and the join's response.
func (s *server) providerJoin(t *testing.T) (signaling.JoinGrant, response) {
	t.Helper()
	u := s.enrol(t, "p@clinic.test", "provider")
	c := s.newClient(t)
	c.mustLogin(u)
	var v struct{ ID string }
	c.do("POST", "/api/v1/visits", struct{}{}).decode(t, &v)
	r := c.do("POST", "/api/v1/visits/"+v.ID+"/join", struct{}{})
	var g signaling.JoinGrant
	r.decode(t, &g)
	return g, r
}

// auditCount counts audit rows matching action (and outcome, if given).
func (s *server) auditCount(t *testing.T, action, outcome, reasonLike string) int {
	t.Helper()
	var n int
	err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE action = $1
		AND ($2 = '' OR outcome = $2) AND ($3 = '' OR reason LIKE $3)`, action, outcome, reasonLike).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
