// Package sso signs staff in through the clinic's identity providers with
// OpenID Connect, and keeps asking them whether they still vouch for each
// person.
//
// The protocol is the libraries': github.com/coreos/go-oidc/v3 discovers an
// issuer, fetches its keys (again when a token names a key it has not seen:
// key rotation) and verifies ID tokens — signature with an advertised
// algorithm (never "none"), issuer, audience, expiry; golang.org/x/oauth2
// builds the authorization request with PKCE (S256) and exchanges the code.
// This package binds the flow to the browser (state, nonce and the PKCE
// verifier in a short-lived sealed HttpOnly cookie, flow.go), checks the
// nonce, reads the claims (claims.go), decides the role from the groups
// claim, links or creates the account (account.go), and opens the session
// through internal/signin, where password sign-ins open theirs — so the one
// session policy, the lock and the local second factor apply (the local
// TOTP is asked when the issuer does not assert MFA).
//
// The sweep (sweep.go) uses each link's refresh token (offline_access,
// sealed with keys.Sealer) every sweep interval; an issuer that refuses it
// has deprovisioned the person, and the account is disabled through
// accounts.Disable, which ends its sessions and, through
// internal/revocation, its calls.
package sso

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/store"
)

// Audit actions. Reports and alert rules match on these strings.
const (
	ActionMap     = "auth.oidc.map"     // the role decision from the groups claim
	ActionLink    = "auth.oidc.link"    // an account linked to (issuer, subject)
	ActionRefused = "auth.oidc.refused" // a flow, token or issuer answer refused
	ActionSweep   = "auth.oidc.sweep"   // the issuer stopped vouching
)

// CallbackPath is where issuers send the browser back.
const CallbackPath = "/api/v1/auth/oidc/callback"

var (
	// ErrUnknownIssuer: no configured issuer has this ID.
	ErrUnknownIssuer = errors.New("sso: unknown issuer")
	// ErrFlow: the sign-in's state is missing, expired or does not match
	// (start again).
	ErrFlow = errors.New("sso: sign-in flow invalid or expired")
	// ErrRefused: the issuer answered with an error, or its token did not
	// verify.
	ErrRefused = errors.New("sso: refused")
	// ErrNotMapped: the person is in no group mapped to a role.
	ErrNotMapped = errors.New("sso: no mapped group")
	// ErrUnavailable: the issuer could not be reached.
	ErrUnavailable = errors.New("sso: issuer unavailable")
)

// Params configure a Service.
type Params struct {
	store.Env
	Issuers []config.OIDCIssuer // with defaults applied (config.OIDCIssuers)
	// PublicURL is the https origin browsers use; the redirect URI is
	// PublicURL + CallbackPath.
	PublicURL string
	Sealer    *keys.Sealer
	Signin    *signin.Service
	Accounts  *accounts.Service
	// Record appends an audit entry outside a transaction.
	Record func(context.Context, audit.Event)
	Logger *slog.Logger
}

// Service runs OpenID Connect sign-ins and the sweep. Lifecycle: New once
// per process; discovery happens on an issuer's first use (and again after
// a failure); no goroutines of its own (the caller runs Sweep).
type Service struct {
	p       Params
	log     *slog.Logger
	issuers map[string]*issuer
	order   []string
}

// issuer is one configured identity provider and, once discovered, its
// verifier.
type issuer struct {
	cfg    config.OIDCIssuer
	client *http.Client
	// clientErr: the CA file could not be read; every use fails with it.
	clientErr error

	mu       sync.Mutex
	provider *oidc.Provider
}

// New returns a Service. An issuer whose CA file cannot be read fails at
// its first use (and is logged now), so that one broken issuer does not
// stop the others.
func New(p Params) *Service {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	s := &Service{p: p, log: p.Logger.With("component", "sso"), issuers: map[string]*issuer{}}
	for _, c := range p.Issuers {
		hc, err := httpClient(c.CAFile)
		if err != nil {
			err = fmt.Errorf("%w: issuer %s: ca_file: %v", ErrUnavailable, c.ID, err)
			s.log.Error("issuer unusable", "issuer", c.ID, "err", err)
		}
		s.issuers[c.ID] = &issuer{cfg: c, client: hc, clientErr: err}
		s.order = append(s.order, c.ID)
	}
	return s
}

// Button is what the sign-in page shows for an issuer.
type Button struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Buttons lists the issuers in configuration order.
func (s *Service) Buttons() []Button {
	out := make([]Button, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, Button{ID: id, Name: s.issuers[id].cfg.Name})
	}
	return out
}

func httpClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("ca_file holds no PEM certificate")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}, nil
}

// ctx carries the issuer's HTTP client to both libraries.
func (i *issuer) ctx(parent context.Context) context.Context {
	return oidc.ClientContext(parent, i.client)
}

func (i *issuer) oauthCtx(parent context.Context) context.Context {
	return context.WithValue(i.ctx(parent), oauth2.HTTPClient, i.client)
}

// discover returns the issuer's provider, fetching its discovery document
// once. The JWKS is fetched by the provider's key set as tokens need it.
func (i *issuer) discover(ctx context.Context) (*oidc.Provider, error) {
	if i.clientErr != nil {
		return nil, i.clientErr
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.provider != nil {
		return i.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// The provider keeps the context's HTTP client (not its deadline) for
	// later key fetches.
	p, err := oidc.NewProvider(i.ctx(ctx), i.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery of %s: %v", ErrUnavailable, i.cfg.ID, err)
	}
	i.provider = p
	return p, nil
}

func (i *issuer) oauth2(p *oidc.Provider, redirect string) *oauth2.Config {
	scopes := []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	for _, sc := range i.cfg.Scopes {
		if sc != oidc.ScopeOpenID && sc != oidc.ScopeOfflineAccess {
			scopes = append(scopes, sc)
		}
	}
	return &oauth2.Config{ClientID: i.cfg.ClientID, ClientSecret: i.cfg.ClientSecret,
		Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: scopes}
}

func (s *Service) issuer(id string) (*issuer, error) {
	i, ok := s.issuers[id]
	if !ok {
		return nil, ErrUnknownIssuer
	}
	return i, nil
}

// refused audits a refusal of a sign-in at issuer id (opaque IDs only) and
// returns err.
func (s *Service) refused(ctx context.Context, src signin.Source, id, subject, reason string, err error) error {
	s.p.Record(ctx, audit.Event{ActorID: actorFor(id, subject), ActorRole: "oidc", Action: ActionRefused,
		ResourceType: "oidc_issuer", ResourceID: id, Outcome: audit.Denied, Reason: reason, IP: src.IP, UserAgent: src.UserAgent})
	return err
}

// actorFor names a person at an issuer before they have an account: the
// issuer's ID and the token's subject (an opaque ID).
func actorFor(id, subject string) string {
	if subject == "" {
		return "oidc:" + id
	}
	return "oidc:" + id + ":" + subject
}
