// Command devidp is a small OpenID Connect provider for development and
// tests ONLY: deploy/services.sh builds and starts it over HTTPS (a
// certificate from the local CA), so that `make run` offers "Sign in with
// the clinic's account" and the tests drive the real redirect flow through
// its login page. It is built on the OpenID-certified provider library
// github.com/zitadel/oidc/v3 (package op), which does discovery, the JWKS,
// authorization code with PKCE, refresh tokens and the token endpoint;
// this command adds an in-memory store, a login-and-consent page, one
// confidential client and built-in test users with a groups claim.
//
// It is never part of a production build (the image builds cmd/openvisit
// alone) and must never face a network: passwords are kept in plain text,
// and a bearer-token admin API (for tests) creates users, disables them
// and rotates the signing key:
//
//	POST /dev/users                     {"username","password","email","name","groups":[…],"mfa":true} → {"sub"}
//	POST /dev/users/{username}/disable  (and /enable)
//	POST /dev/keys/rotate
//
// Usage:
//
//	devidp -addr 127.0.0.1:5556 -issuer https://localhost:5556 -cert server.crt -key server.key \
//	       -client-id openvisit-dev -client-secret … -admin-token-file admin.token
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// The built-in test users (README: "the dev IdP").
func testUsers() []user {
	return []user{
		{Username: "clinician", Password: "openvisit-dev", Email: "clinician@clinic.test", Name: "Dev Clinician",
			Groups: []string{"openvisit-providers"}, MFA: true},
		{Username: "clinic-admin", Password: "openvisit-dev", Email: "clinic-admin@clinic.test", Name: "Dev Clinic Admin",
			Groups: []string{"openvisit-admins"}, MFA: true},
	}
}

type options struct {
	addr, issuer, cert, key   string
	clientID, clientSecret    string
	redirects, adminTokenFile string
	rotateEvery               time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:5556", "listen address (loopback only)")
	flag.StringVar(&o.issuer, "issuer", "https://localhost:5556", "issuer URL (https)")
	flag.StringVar(&o.cert, "cert", "", "TLS certificate (PEM)")
	flag.StringVar(&o.key, "key", "", "TLS key (PEM)")
	flag.StringVar(&o.clientID, "client-id", "openvisit-dev", "the client's ID")
	flag.StringVar(&o.clientSecret, "client-secret", "", "the client's secret (required)")
	flag.StringVar(&o.redirects, "redirect-uris", "https://localhost:*/api/v1/auth/oidc/callback,https://127.0.0.1:*/api/v1/auth/oidc/callback",
		"comma-separated redirect URI globs")
	flag.StringVar(&o.adminTokenFile, "admin-token-file", "", "file holding the dev admin API's bearer token (required)")
	flag.DurationVar(&o.rotateEvery, "rotate-every", 0, "rotate the signing key this often (0: only on POST /dev/keys/rotate)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "devidp:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.cert == "" || o.key == "" || o.clientSecret == "" || o.adminTokenFile == "" || !strings.HasPrefix(o.issuer, "https://") {
		return errors.New("-cert, -key, -client-secret, -admin-token-file and an https -issuer are required")
	}
	tok, err := os.ReadFile(o.adminTokenFile)
	if err != nil || len(strings.TrimSpace(string(tok))) < 16 {
		return fmt.Errorf("admin token file: %v (want >= 16 characters)", err)
	}
	h, st, err := newHandler(o, strings.TrimSpace(string(tok)))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.rotateEvery > 0 {
		go rotateLoop(ctx, st, o.rotateEvery)
	}
	srv := &http.Server{Addr: o.addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	slog.Info("devidp: serving", "addr", o.addr, "issuer", o.issuer)
	if err := srv.ListenAndServeTLS(o.cert, o.key); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func rotateLoop(ctx context.Context, st *storage, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := st.rotate(); err != nil {
				slog.Error("devidp: rotate", "err", err)
			}
		}
	}
}

// newHandler builds the provider (op) and mounts the login page and the dev
// admin API beside it.
func newHandler(o options, adminToken string) (http.Handler, *storage, error) {
	c := &client{id: o.clientID, secret: o.clientSecret, redirectURIs: strings.Split(o.redirects, ","),
		loginURL: func(id string) string { return "/login?id=" + id }}
	st, err := newStorage(c, testUsers())
	if err != nil {
		return nil, nil, err
	}
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, nil, err
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey: cryptoKey, CodeMethodS256: true, GrantTypeRefreshToken: true,
		SupportedScopes: []string{"openid", "profile", "email", "offline_access", scopeGroups},
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "email", "email_verified", "name", "groups"},
	}, st, op.StaticIssuer(o.issuer))
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	l := &login{st: st, callback: op.AuthCallbackURL(provider)}
	intercept := op.NewIssuerInterceptor(provider.IssuerFromRequest)
	mux.HandleFunc("GET /login", l.page)
	mux.HandleFunc("POST /login", intercept.HandlerFunc(l.submit))
	a := &admin{st: st, token: adminToken}
	mux.HandleFunc("POST /dev/users", a.guard(a.putUser))
	mux.HandleFunc("POST /dev/users/{username}/disable", a.guard(a.disable(true)))
	mux.HandleFunc("POST /dev/users/{username}/enable", a.guard(a.disable(false)))
	mux.HandleFunc("POST /dev/keys/rotate", a.guard(a.rotate))
	mux.Handle("/", provider)
	return mux, st, nil
}

// admin is the dev-only API that tests use to make users and deprovision
// them.
type admin struct {
	st    *storage
	token string
}

func (a *admin) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		h(w, r)
	}
}
