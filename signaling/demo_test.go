package signaling

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/internal/token"
)

type fixture struct {
	srv      *Server
	router   *gin.Engine
	pool     *pgxpool.Pool
	verifier *token.Verifier
}

func newFixture(t *testing.T, demo bool) *fixture {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, testenv.Postgres(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := db.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO sfu_nodes (id, url) VALUES ('node-a', 'wss://media.test/sfu/ws')`); err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	m, _ := token.NewMinter(priv, time.Minute, nil)
	v, _ := token.NewVerifier(pub, "node-a", nil)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	sealer, err := keys.NewSealer(secret)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Params{
		DB: store.New(pool, nil), Minter: m, Node: "node-a", Sealer: sealer,
		Auth: config.Default().Auth, Origin: "https://clinic.test:8443",
		PublicURL: "https://clinic.test:8443", Demo: demo,
		Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
	})
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(httpx.RequestIDs(), httpx.LimitBody(4096))
	s.Register(r)
	return &fixture{srv: s, router: r, pool: pool, verifier: v}
}

func (f *fixture) redeem(t *testing.T, body string) (*httptest.ResponseRecorder, JoinGrant) {
	t.Helper()
	req := httptest.NewRequest("POST", "/api/v1/demo/redeem", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://clinic.test:8443")
	w := httptest.NewRecorder()
	f.router.ServeHTTP(w, req)
	var g JoinGrant
	if w.Code == 200 {
		if err := json.Unmarshal(w.Body.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
	}
	return w, g
}

func codeOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if u.RawQuery != "" || !strings.HasPrefix(u.Fragment, "code=") {
		t.Fatalf("link %q must carry its code in the fragment only", link)
	}
	return strings.TrimPrefix(u.Fragment, "code=")
}

func TestDemoLinksAreOneTime(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	links, err := f.srv.CreateDemoVisit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 2 {
		t.Fatalf("got %d links, want 2", len(links))
	}
	roles := map[token.Role]bool{}
	var visit string
	for _, l := range links {
		w, g := f.redeem(t, `{"code":"`+codeOf(t, l)+`"}`)
		if w.Code != 200 {
			t.Fatalf("redeem: %d %s", w.Code, w.Body)
		}
		c, err := f.verifier.Verify(g.Token, g.VisitID)
		if err != nil {
			t.Fatalf("minted token does not verify: %v", err)
		}
		if c.Participant != g.ParticipantID || c.Role != g.Role || g.WSURL != "wss://media.test/sfu/ws" {
			t.Fatalf("grant %+v does not match its token %+v", g, c)
		}
		roles[g.Role] = true
		if visit != "" && string(g.VisitID) != visit {
			t.Fatal("the two links lead to different visits")
		}
		visit = string(g.VisitID)
	}
	if !roles[token.RoleProvider] || !roles[token.RolePatient] {
		t.Fatalf("roles = %v, want one provider and one patient", roles)
	}

	// A second use of a link is refused, with the same answer as a made-up code.
	for _, body := range []string{`{"code":"` + codeOf(t, links[0]) + `"}`, `{"code":"bm90LWEtY29kZQ"}`} {
		w, _ := f.redeem(t, body)
		if w.Code != 404 || !strings.Contains(w.Body.String(), `"link_invalid"`) {
			t.Fatalf("reuse: %d %s, want 404 link_invalid", w.Code, w.Body)
		}
	}

	entries, err := audit.New(f.pool).Recent(ctx, "", 20)
	if err != nil {
		t.Fatal(err)
	}
	var ok, denied int
	for _, e := range entries {
		if e.Action == audit.ActionDemoLinkRedeem {
			switch e.Outcome {
			case audit.Success:
				ok++
			case audit.Denied:
				denied++
			}
		}
	}
	if ok != 2 || denied != 2 {
		t.Fatalf("audit: %d successful and %d denied redemptions, want 2 and 2", ok, denied)
	}
}

func TestDemoRedeemBadInput(t *testing.T) {
	f := newFixture(t, true)
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"empty code", `{"code":""}`, 400, "bad_code"},
		{"long code", `{"code":"` + strings.Repeat("a", 65) + `"}`, 400, "bad_code"},
		{"unknown field", `{"code":"x","role":"provider"}`, 400, "unknown_field"},
		{"not json", `code=x`, 400, "bad_json"},
		{"huge body", `{"code":"` + strings.Repeat("a", 8000) + `"}`, 413, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := f.redeem(t, tt.body)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), `"`+tt.code+`"`) {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body, tt.status, tt.code)
			}
		})
	}
}

func TestDemoOffMeansNoEndpoint(t *testing.T) {
	f := newFixture(t, false)
	w, _ := f.redeem(t, `{"code":"x"}`)
	if w.Code != http.StatusNotFound {
		t.Fatalf("demo endpoint answered %d with demo mode off", w.Code)
	}
	if _, err := f.srv.CreateDemoVisit(context.Background()); err == nil {
		t.Fatal("CreateDemoVisit worked with demo mode off")
	}
}

func TestDemoRedeemRefusesCrossOrigin(t *testing.T) {
	f := newFixture(t, true)
	links, err := f.srv.CreateDemoVisit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/api/v1/demo/redeem", strings.NewReader(`{"code":"`+codeOf(t, links[0])+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://evil.test")
	w := httptest.NewRecorder()
	f.router.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Fatalf("cross-origin redeem = %d, want 403", w.Code)
	}
	// The refused request did not use up the link.
	if w, _ := f.redeem(t, `{"code":"`+codeOf(t, links[0])+`"}`); w.Code != 200 {
		t.Fatalf("same-origin redeem after a refused cross-origin one = %d", w.Code)
	}
}

func TestHealthAndReady(t *testing.T) {
	f := newFixture(t, false)
	for _, path := range []string{"/healthz", "/readyz"} {
		w := httptest.NewRecorder()
		f.router.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 200 {
			t.Errorf("%s = %d", path, w.Code)
		}
	}
	f.pool.Close() // the database goes away: not ready, still healthy
	w := httptest.NewRecorder()
	f.router.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != 503 {
		t.Errorf("/readyz with the pool closed = %d, want 503", w.Code)
	}
}
