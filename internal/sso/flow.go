package sso

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/signin"
)

// Lifetimes of the two browser-held states.
const (
	// FlowTTL bounds the trip to the identity provider and back.
	FlowTTL = 10 * time.Minute
	// PendingTTL bounds the wait for the local second factor.
	PendingTTL = 5 * time.Minute
	// MaxCookie bounds a sealed state presented back to us.
	MaxCookie = 2048
	// maxParam bounds the callback's query values.
	maxParam = 2048
)

// Sealer purposes: a flow state cannot be replayed as a pending sign-in.
const (
	flowPurpose    = "oidc-flow"
	pendingPurpose = "oidc-pending-second-factor"
)

// flow is what the browser carries to the issuer and back (sealed, in an
// HttpOnly cookie): the issuer, the state and nonce sent, and the PKCE
// verifier whose challenge was sent.
type flow struct {
	Issuer   string `json:"i"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

// pending is a sign-in the issuer vouched for without MFA, waiting for the
// local second factor.
type pending struct {
	Issuer  string     `json:"i"`
	User    ids.UserID `json:"u"`
	Expires int64      `json:"e"`
}

// Begin starts a sign-in at issuer id: it returns the authorization URL to
// send the browser to and the sealed flow state to set as a cookie.
func (s *Service) Begin(ctx context.Context, id string) (authURL, cookie string, err error) {
	i, err := s.issuer(id)
	if err != nil {
		return "", "", err
	}
	p, err := i.discover(ctx)
	if err != nil {
		return "", "", err
	}
	f := flow{Issuer: id, State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(),
		Expires: s.p.Now().Add(FlowTTL).Unix()}
	if cookie, err = s.seal(flowPurpose, f); err != nil {
		return "", "", err
	}
	authURL = i.oauth2(p, s.redirectURL()).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	return authURL, cookie, nil
}

func (s *Service) redirectURL() string { return s.p.PublicURL + CallbackPath }

// Result is a finished sign-in: a session (Opened), or — when the issuer
// did not assert MFA — Pending, the sealed state to set as a cookie while
// the local second factor is asked.
type Result struct {
	Opened  signin.Opened
	Pending string
}

// Finish completes the sign-in that cookie began, from the callback's
// query: the state must match, the code is exchanged with the PKCE
// verifier, and the ID token must verify and carry the nonce. Every
// refusal is audited.
func (s *Service) Finish(ctx context.Context, cookie string, q url.Values, src signin.Source) (Result, error) {
	var f flow
	if err := s.open(flowPurpose, cookie, &f); err != nil {
		return Result{}, s.refused(ctx, src, "", "", "flow state missing or expired", ErrFlow)
	}
	i, err := s.issuer(f.Issuer)
	if err != nil {
		return Result{}, err
	}
	state, code := q.Get("state"), q.Get("code")
	if len(state) > maxParam || len(code) > maxParam || subtle.ConstantTimeCompare([]byte(state), []byte(f.State)) != 1 {
		return Result{}, s.refused(ctx, src, f.Issuer, "", "state mismatch", ErrFlow)
	}
	if e := q.Get("error"); e != "" || code == "" {
		return Result{}, s.refused(ctx, src, f.Issuer, "", "issuer error: "+clip(e, 64), ErrRefused)
	}
	p, err := i.discover(ctx)
	if err != nil {
		return Result{}, s.refused(ctx, src, f.Issuer, "", "discovery failed", err)
	}
	tok, err := i.oauth2(p, s.redirectURL()).Exchange(i.oauthCtx(ctx), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Result{}, s.refused(ctx, src, f.Issuer, "", "code exchange failed: "+oauthReason(err), ErrRefused)
	}
	c, err := s.verify(ctx, i, p, tok, f.Nonce)
	if err != nil {
		return Result{}, s.refused(ctx, src, f.Issuer, "", "id token: "+err.Error(), ErrRefused)
	}
	return s.signIn(ctx, i, c, tok.RefreshToken, src)
}

// verify checks tok's ID token (go-oidc: signature, issuer, audience,
// expiry) and its nonce, and reads its claims.
func (s *Service) verify(ctx context.Context, i *issuer, p *oidc.Provider, tok *oauth2.Token, nonce string) (Claims, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Claims{}, errors.New("missing")
	}
	return verifyIDToken(i.ctx(ctx), p.Verifier(&oidc.Config{ClientID: i.cfg.ClientID, Now: s.p.Now}), raw, nonce, i.cfg.GroupsClaim)
}

// verifyIDToken is the ID token check on its own (TestOIDCRejectsForgedToken
// drives it with forged tokens).
func verifyIDToken(ctx context.Context, v *oidc.IDTokenVerifier, raw, nonce, groupsClaim string) (Claims, error) {
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return Claims{}, errors.New("does not verify")
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Claims{}, errors.New("nonce mismatch")
	}
	var m map[string]json.RawMessage
	if err := idt.Claims(&m); err != nil {
		return Claims{}, errors.New("claims unreadable")
	}
	c, err := claimsFrom(m, groupsClaim)
	if err != nil {
		return Claims{}, err
	}
	c.Subject = idt.Subject
	return c, nil
}

// CompleteSecondFactor finishes a pending sign-in with the local second
// factor (a TOTP code or a recovery code).
func (s *Service) CompleteSecondFactor(ctx context.Context, cookie, code, recovery string, src signin.Source) (signin.Opened, error) {
	var pd pending
	if err := s.open(pendingPurpose, cookie, &pd); err != nil {
		return signin.Opened{}, s.refused(ctx, src, "", "", "pending second factor missing or expired", ErrFlow)
	}
	u, err := s.p.Signin.User(ctx, pd.User)
	if err != nil {
		return signin.Opened{}, err
	}
	return s.p.Signin.OpenFederated(ctx, signin.Federated{User: u, Issuer: pd.Issuer, Code: code, RecoveryCode: recovery,
		IP: src.IP, UserAgent: src.UserAgent})
}

func (s *Service) seal(purpose string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sealed, err := s.p.Sealer.Seal(purpose, b)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// open unseals a browser-held state into v and checks its expiry (every
// such state has an "e" member, Unix seconds).
func (s *Service) open(purpose, cookie string, v any) error {
	if cookie == "" || len(cookie) > MaxCookie {
		return ErrFlow
	}
	sealed, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil {
		return ErrFlow
	}
	b, err := s.p.Sealer.Open(purpose, sealed)
	if err != nil {
		return ErrFlow
	}
	var exp struct {
		E int64 `json:"e"`
	}
	if json.Unmarshal(b, &exp) != nil || json.Unmarshal(b, v) != nil || s.p.Now().Unix() > exp.E {
		return ErrFlow
	}
	return nil
}

func random() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// oauthReason is the issuer's error code (a fixed vocabulary), never its
// description.
func oauthReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		return clip(re.ErrorCode, 64)
	}
	if errors.As(err, &re) {
		return "http " + re.Response.Status
	}
	return "transport"
}

// clip keeps the first n bytes of printable ASCII of s.
func clip(s string, n int) string {
	out := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(out) < n; i++ {
		if s[i] >= 0x21 && s[i] < 0x7f {
			out = append(out, s[i])
		}
	}
	return string(out)
}
