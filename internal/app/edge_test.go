package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/e2e"
	"github.com/openvisit/openvisit/internal/httpx"
)

// lastAuditIP is the address of the newest audit entry for action.
func (s *server) lastAuditIP(t *testing.T, action string) string {
	t.Helper()
	var ip string
	if err := s.Pool.QueryRow(context.Background(),
		`SELECT ip FROM audit_events WHERE action = $1 ORDER BY seq DESC LIMIT 1`, action).Scan(&ip); err != nil {
		t.Fatal(err)
	}
	return ip
}

// signInFrom makes attempts failed sign-ins, each claiming to come from
// the X-Forwarded-For that forwarded(i) names, and returns how many the
// per-address limiter refused (429).
func signInFrom(t *testing.T, s *server, attempts int, forwarded func(i int) string) (limited int) {
	t.Helper()
	c := s.newClient(t)
	for i := range attempts {
		r := c.doWith("POST", "/api/v1/auth/login",
			map[string]string{"email": "nobody@clinic.test", "password": "wrong password here", "code": "000000"},
			map[string]string{"X-Forwarded-For": forwarded(i)})
		switch r.Status {
		case http.StatusTooManyRequests:
			limited++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("sign-in %d = %d %s", i, r.Status, r.Body)
		}
	}
	return limited
}

// The client's address is the TCP peer's unless the peer is a configured
// trusted proxy: a forged X-Forwarded-For from anyone else changes neither
// the audited address (which the failed-sign-ins-per-address alert
// reads), the session row, nor the sign-in limiter's key.
func TestForgedForwardedForIgnored(t *testing.T) {
	const attempts = 24 // the per-address limiter allows a burst of 20

	t.Run("untrusted peer", func(t *testing.T) {
		s := startServer(t) // no trusted proxies (the default)
		// Every attempt names another address; all are one client.
		limited := signInFrom(t, s, attempts, func(i int) string { return "203.0.113." + strconv.Itoa(i+1) })
		if limited == 0 {
			t.Errorf("%d failed sign-ins with a new forged X-Forwarded-For each: none rate-limited (the limiter keyed the forged address)", attempts)
		}
		if ip := s.lastAuditIP(t, "auth.login"); ip != "127.0.0.1" {
			t.Errorf("audited sign-in address = %q, want the peer 127.0.0.1", ip)
		}
		u := s.enrol(t, "forged@clinic.test", "provider")
		c := s.newClient(t)
		r := c.loginWith(u, map[string]string{"X-Forwarded-For": "198.51.100.99"})
		if r.Status != 200 {
			t.Fatalf("login = %d %s", r.Status, r.Body)
		}
		if ip := s.sessionIP(t, u.Email); ip != "127.0.0.1" {
			t.Errorf("session address = %q, want the peer 127.0.0.1", ip)
		}
	})

	t.Run("configured proxy", func(t *testing.T) {
		s := startServerWith(t, func(c *config.Config) { c.HTTP.TrustedProxies = []string{"127.0.0.0/8"} })
		// The proxy appends the address it saw; what the client put before
		// it is not believed.
		limited := signInFrom(t, s, attempts, func(i int) string { return "203.0.113." + strconv.Itoa(i+1) + ", 198.51.100.7" })
		if limited == 0 {
			t.Errorf("%d failed sign-ins from one forwarded client: none rate-limited", attempts)
		}
		if ip := s.lastAuditIP(t, "auth.login"); ip != "198.51.100.7" {
			t.Errorf("audited sign-in address = %q, want the forwarded client 198.51.100.7", ip)
		}
		// Another client behind the same proxy has its own budget.
		if n := signInFrom(t, s, 1, func(int) string { return "198.51.100.8" }); n != 0 {
			t.Error("a second client behind the proxy was rate-limited with the first")
		}
		u := s.enrol(t, "proxied@clinic.test", "provider")
		c := s.newClient(t)
		if r := c.loginWith(u, map[string]string{"X-Forwarded-For": "198.51.100.9"}); r.Status != 200 {
			t.Fatalf("login = %d %s", r.Status, r.Body)
		}
		if ip := s.sessionIP(t, u.Email); ip != "198.51.100.9" {
			t.Errorf("session address = %q, want the forwarded client 198.51.100.9", ip)
		}
	})
}

// loginWith signs c in as u, sending hdr.
func (c *client) loginWith(u staff, hdr map[string]string) response {
	c.t.Helper()
	code, _ := totp.Code(u.Secret, c.s.Clock.Now())
	r := c.doWith("POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": u.Password, "code": code}, hdr)
	c.s.Clock.Advance(totp.Period)
	return r
}

// sessionIP is the address recorded on the newest session of the user.
func (s *server) sessionIP(t *testing.T, email string) string {
	t.Helper()
	var ip string
	if err := s.Pool.QueryRow(context.Background(), `SELECT s.ip FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE u.email = $1 ORDER BY s.created_at DESC LIMIT 1`, email).Scan(&ip); err != nil {
		t.Fatal(err)
	}
	return ip
}

// Operational endpoints are not public: /metrics is not on the public
// listener (which the Ingress exposes whole) but on the operational one,
// loopback by default; /readyz on a broken database says "unavailable" and
// nothing more.
func TestMetricsNotPublic(t *testing.T) {
	if host, _, _ := net.SplitHostPort(config.Default().HTTP.OpsAddr); !net.ParseIP(host).IsLoopback() {
		t.Errorf("default http.ops_addr %q is not loopback", config.Default().HTTP.OpsAddr)
	}
	var proxy *e2e.DBProxy
	s := startServerWith(t, func(c *config.Config) { proxy, c.Database.URL = e2e.StartDBProxy(t, c.Database.URL) })
	c := s.newClient(t)

	if r := c.do("GET", "/metrics", nil); r.Status != http.StatusNotFound {
		t.Errorf("public /metrics = %d, want 404", r.Status)
	}
	if _, ok := s.App.Signaling().Policy()["GET /metrics"]; ok {
		t.Error("the public route policy still lists /metrics")
	}
	ops := s.App.OpsAddr()
	if ops == nil {
		t.Fatal("no operational listener")
	}
	resp, err := http.Get("http://" + ops.String() + "/metrics")
	if err != nil {
		t.Fatalf("ops /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(string(body), "# TYPE openvisit_sfu_rooms gauge") || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("ops /metrics = %d %q, want the Prometheus text with openvisit_ and go_ series", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, err := http.Get("http://" + ops.String() + "/api/v1/auth/session"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("the ops listener serves the API: %d", resp.StatusCode)
		}
	}

	for path, want := range map[string]string{"/healthz": `{"status":"ok"}`, "/readyz": `{"status":"ready"}`} {
		if r := c.do("GET", path, nil); r.Status != 200 || string(r.Body) != want {
			t.Errorf("%s = %d %s, want 200 %s", path, r.Status, r.Body, want)
		}
	}
	proxy.Cut()
	if r := c.do("GET", "/readyz", nil); r.Status != http.StatusServiceUnavailable || string(r.Body) != `{"status":"unavailable"}` {
		t.Errorf("/readyz with the database down = %d %s, want 503 {\"status\":\"unavailable\"} only", r.Status, r.Body)
	}
	if r := c.do("GET", "/healthz", nil); r.Status != 200 {
		t.Errorf("/healthz with the database down = %d, want 200 (the process is up)", r.Status)
	}
}

// While PostgreSQL cannot be reached, API calls answer 503
// service_unavailable with Retry-After (not 500 internal), and serve again
// once it is back.
func TestDatabaseOutageAnswers503(t *testing.T) {
	var proxy *e2e.DBProxy
	s := startServerWith(t, func(c *config.Config) { proxy, c.Database.URL = e2e.StartDBProxy(t, c.Database.URL) })
	u := s.enrol(t, "outage@clinic.test", "provider")
	c := s.newClient(t)
	c.mustLogin(u)
	if r := c.do("GET", "/api/v1/visits", nil); r.Status != 200 {
		t.Fatalf("visits before the outage = %d %s", r.Status, r.Body)
	}

	proxy.Cut()
	anon := s.newClient(t)
	for _, call := range []struct {
		who          *client
		method, path string
		body         any
	}{
		{c, "GET", "/api/v1/visits", nil},
		{c, "POST", "/api/v1/visits", struct{}{}},
		{c, "GET", "/api/v1/auth/session", nil},
		{anon, "POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": u.Password, "code": "000000"}},
		{anon, "POST", "/api/v1/invites/redeem", map[string]string{"invite": "not-an-invite", "date_of_birth": "1990-01-01"}},
	} {
		r := call.who.do(call.method, call.path, call.body)
		if r.Status != http.StatusServiceUnavailable || r.code() != httpx.CodeUnavailable {
			t.Errorf("%s %s with the database down = %d %s, want 503 %s", call.method, call.path, r.Status, r.Body, httpx.CodeUnavailable)
			continue
		}
		if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("%s %s: Retry-After = %q", call.method, call.path, ra)
		}
	}

	proxy.Restore()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := c.do("GET", "/api/v1/visits", nil)
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("visits after the database came back = %d %s", r.Status, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A User-Agent is client data like any other: bytes PostgreSQL text
// cannot hold, or 60 KiB of it, neither fail a sign-in (the audit entry
// and the session are written in one transaction) nor reach the database
// as sent.
func TestUserAgentStoredSafely(t *testing.T) {
	s := startServer(t)
	u := s.enrol(t, "agent@clinic.test", "provider")
	c := s.newClient(t)
	ua := "Mozilla/5.0 \xff\xfe" + strings.Repeat("x", 60<<10)
	if r := c.loginWith(u, map[string]string{"User-Agent": ua}); r.Status != 200 {
		t.Fatalf("sign-in with a non-UTF-8 User-Agent = %d %s, want 200", r.Status, r.Body)
	}
	var sessUA, auditUA string
	if err := s.Pool.QueryRow(context.Background(), `SELECT user_agent FROM sessions WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1`,
		string(u.ID)).Scan(&sessUA); err != nil {
		t.Fatal(err)
	}
	if err := s.Pool.QueryRow(context.Background(), `SELECT user_agent FROM audit_events WHERE action = 'auth.login' AND outcome = 'success'
		ORDER BY seq DESC LIMIT 1`).Scan(&auditUA); err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string]string{"session": sessUA, "audit entry": auditUA} {
		if !strings.HasPrefix(got, "Mozilla/5.0 ") || len(got) > 300 {
			t.Errorf("%s user agent = %.40q… (%d bytes), want the cleaned first 256 bytes", what, got, len(got))
		}
	}
}
