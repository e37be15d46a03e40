package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// scopeGroups asks for the groups claim.
const scopeGroups = "groups"

var errNotFound = errors.New("devidp: not found")

// storage is the provider's state, in memory (a restart signs everyone out
// of the IdP and voids its refresh tokens, which a dev IdP may do). It
// implements op.Storage.
type storage struct {
	client *client

	mu       sync.Mutex
	users    map[string]*user // by username
	requests map[string]*authRequest
	codes    map[string]string // code → request id
	access   map[string]*accessToken
	refresh  map[string]*refreshToken
	keys     []*signingKey // oldest first; the last one signs
}

func newStorage(c *client, users []user) (*storage, error) {
	s := &storage{client: c, users: map[string]*user{}, requests: map[string]*authRequest{},
		codes: map[string]string{}, access: map[string]*accessToken{}, refresh: map[string]*refreshToken{}}
	for _, u := range users {
		s.putUser(u)
	}
	return s, s.rotate()
}

// signingKey is one RSA key pair; the JWKS publishes every key still kept.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// keepKeys is how many keys the JWKS keeps: the signing one and the one
// before it, so that tokens signed just before a rotation still verify.
const keepKeys = 2

// rotate makes a new signing key, keeping the previous one published.
func (s *storage) rotate() error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, &signingKey{id: randomID(), key: k})
	if len(s.keys) > keepKeys {
		s.keys = s.keys[len(s.keys)-keepKeys:]
	}
	return nil
}

func randomID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *storage) putUser(u user) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.users[u.Username]; ok && u.Subject == "" {
		u.Subject = old.Subject
	}
	if u.Subject == "" {
		u.Subject = randomID()
	}
	s.users[u.Username] = &u
	return u.Subject
}

// setDisabled disables (or enables) a user; disabling also drops their
// refresh tokens' future: TokenRequestByRefreshToken refuses them.
func (s *storage) setDisabled(username string, off bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[username]
	if !ok {
		return errNotFound
	}
	u.Disabled = off
	return nil
}

// userBySubject must be called with s.mu held.
func (s *storage) userBySubject(sub string) *user {
	for _, u := range s.users {
		if u.Subject == sub {
			return u
		}
	}
	return nil
}

// checkLogin completes request id when username and password match an
// enabled user.
func (s *storage) checkLogin(id, username, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return errNotFound
	}
	u, ok := s.users[username]
	if !ok || u.Disabled || u.Password != password {
		return errors.New("wrong username or password")
	}
	req.subject, req.authTime, req.done = u.Subject, time.Now(), true
	req.amr = []string{"pwd"}
	if u.MFA {
		req.amr = []string{"pwd", "otp", "mfa"}
	}
	return nil
}

func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(r.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	req := &authRequest{id: randomID(), created: time.Now(), clientID: r.ClientID, redirectURI: r.RedirectURI,
		state: r.State, nonce: r.Nonce, scopes: r.Scopes, responseType: r.ResponseType, responseMode: r.ResponseMode}
	if r.CodeChallenge != "" {
		req.codeChallenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[req.id] = req
	return req, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.requests[id]; ok {
		return r, nil
	}
	return nil, errNotFound
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errNotFound
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest forgets the request and its code: a code is single use.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	return s.newAccess(r)
}

func (s *storage) newAccess(r op.TokenRequest) (string, time.Time, error) {
	t := &accessToken{subject: r.GetSubject(), scopes: r.GetScopes(), expires: time.Now().Add(5 * time.Minute)}
	if aud := r.GetAudience(); len(aud) > 0 {
		t.clientID = aud[0]
	}
	id := randomID()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access[id] = t
	return id, t.expires, nil
}

// CreateAccessAndRefreshTokens issues a refresh token with the access token
// (code flow with offline_access) or rotates one (refresh grant).
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	accessID, exp, err := s.newAccess(r)
	if err != nil {
		return "", "", time.Time{}, err
	}
	rt := &refreshToken{token: randomID(), subject: r.GetSubject(), scopes: r.GetScopes(), expires: time.Now().Add(30 * 24 * time.Hour)}
	switch req := r.(type) {
	case *authRequest:
		rt.clientID, rt.amr, rt.authTime = req.clientID, req.amr, req.authTime
	case *refreshToken:
		rt.clientID, rt.amr, rt.authTime = req.clientID, req.amr, req.authTime
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if current != "" {
		if _, ok := s.refresh[current]; !ok {
			return "", "", time.Time{}, op.ErrInvalidRefreshToken
		}
		delete(s.refresh, current)
	}
	s.refresh[rt.token] = rt
	return accessID, rt.token, exp, nil
}

// TokenRequestByRefreshToken refuses an unknown or expired token, and any
// token of a user who is gone or disabled: the op answers invalid_grant.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok || time.Now().After(rt.expires) {
		return nil, op.ErrInvalidRefreshToken
	}
	if u := s.userBySubject(rt.subject); u == nil || u.Disabled {
		return nil, errors.New("devidp: user disabled")
	}
	c := *rt
	return &c, nil
}

func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, rt := range s.refresh {
		if rt.subject == userID && rt.clientID == clientID {
			delete(s.refresh, k)
		}
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, rt.token, nil
}

func (s *storage) RevokeToken(_ context.Context, token, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.refresh[token]; ok && rt.clientID == clientID {
		delete(s.refresh, token)
	}
	delete(s.access, token)
	return nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1], nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]op.Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.client.id {
		return nil, errNotFound
	}
	return s.client, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.client.id || secret != s.client.secret {
		return errors.New("devidp: wrong client credentials")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(info, r.GetSubject(), scopes)
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.access[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errors.New("devidp: token invalid or expired")
	}
	return s.setUserinfo(info, t.subject, t.scopes)
}

func (s *storage) setUserinfo(info *oidc.UserInfo, sub string, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userBySubject(sub)
	if u == nil || u.Disabled {
		return errors.New("devidp: user gone or disabled")
	}
	info.Subject = u.Subject
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeEmail:
			info.Email, info.EmailVerified = u.Email, true
		case oidc.ScopeProfile:
			info.Name, info.PreferredUsername = u.Name, u.Username
		case scopeGroups:
			info.AppendClaims("groups", slices.Clone(u.Groups))
		}
	}
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, r *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	s.mu.Lock()
	t, ok := s.access[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) || t.clientID != clientID {
		return errors.New("devidp: token invalid")
	}
	r.Subject, r.ClientID, r.Scope, r.Expiration = t.subject, t.clientID, t.scopes, oidc.FromTime(t.expires)
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound // no JWT profile grant
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotFound
}

func (s *storage) Health(context.Context) error { return nil }
