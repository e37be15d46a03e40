package smart

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/store"
)

// The client credentials grant with a JWT assertion (RFC 7523 §2.2).
const (
	GrantClientCredentials = "client_credentials"
	AssertionTypeJWT       = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// Limits of the token endpoint.
const (
	// MaxAssertion bounds a presented assertion (bytes).
	MaxAssertion = 8 << 10
	// MaxAssertionLife is how far ahead an assertion may expire (SMART:
	// "no more than five minutes in the future").
	MaxAssertionLife = 5 * time.Minute
	// TokenLife is the life of an access token.
	TokenLife = 5 * time.Minute
	// Leeway allows for clock skew between the client and this server.
	Leeway = 30 * time.Second
	// MaxToken bounds a presented access token.
	MaxToken = 128
)

// algorithms SMART Backend Services names; any other is refused before
// the signature is looked at.
var algorithms = []jose.SignatureAlgorithm{jose.RS384, jose.ES384}

const tokenPrefix = "ovat_"

// TokenRequest is the form body of POST /oauth/token.
type TokenRequest struct {
	GrantType, AssertionType, Assertion, Scope string
}

// AccessToken is what the token endpoint answers.
type AccessToken struct {
	Token     string   `json:"access_token"`
	Type      string   `json:"token_type"`
	ExpiresIn int      `json:"expires_in"`
	Scope     string   `json:"scope"`
	Client    string   `json:"-"`
	Scopes    []string `json:"-"`
}

// Issuer runs the token endpoint. TokenURL is the endpoint's own absolute
// URL, the audience every assertion must name.
type Issuer struct {
	Env      store.Env
	TokenURL string
}

// Issue checks a client's assertion and issues an access token for the
// scopes asked (all of them granted to the client). The issue, or the
// refusal of a known client, is audited with the client as actor; ev
// carries the source (IP, user agent). A refusal is an *Error.
func (is Issuer) Issue(ctx context.Context, r TokenRequest, ev audit.Event) (AccessToken, error) {
	client, claims, err := is.verify(ctx, r)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && client.ID != "" {
			is.audit(ctx, ev, client.ID, audit.Denied, ActionTokenRefuse, e.Reason)
		}
		return AccessToken{}, err
	}
	scopes, err := grantedScopes(client, r.Scope)
	if err != nil {
		is.audit(ctx, ev, client.ID, audit.Denied, ActionTokenRefuse, err.(*Error).Reason)
		return AccessToken{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return AccessToken{}, err
	}
	tok := tokenPrefix + b64(raw)
	now := is.Env.Now()
	ev.ActorID, ev.ActorRole, ev.Action, ev.Outcome = client.ID, ActorRole, ActionTokenIssue, audit.Success
	ev.ResourceType, ev.ResourceID, ev.Reason = "machine_client", client.ID, "scopes "+strings.Join(scopes, " ")
	err = is.Env.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		if err := store.SeeAssertion(ctx, tx, client.ID, claims.ID, claims.Expiry.Time(), now); err != nil {
			return err
		}
		return store.CreateAccessToken(ctx, tx, hashToken(tok), client.ID, scopes, now, now.Add(TokenLife))
	})
	if errors.Is(err, store.ErrConflict) {
		is.audit(ctx, ev, client.ID, audit.Denied, ActionTokenRefuse, "replayed jti")
		return AccessToken{}, refuse("invalid_grant", "replayed jti")
	}
	if err != nil {
		return AccessToken{}, err
	}
	return AccessToken{Token: tok, Type: "bearer", ExpiresIn: int(TokenLife / time.Second),
		Scope: strings.Join(scopes, " "), Client: client.ID, Scopes: scopes}, nil
}

func (is Issuer) audit(ctx context.Context, ev audit.Event, client string, o audit.Outcome, action, reason string) {
	ev.ActorID, ev.ActorRole, ev.Action, ev.Outcome, ev.Reason = client, ActorRole, action, o, reason
	ev.ResourceType, ev.ResourceID = "machine_client", client
	_ = is.Env.DB.Audit().Append(ctx, ev) // a refusal stands whether or not it is recorded
}

// verify checks the request's form and assertion: an allowed algorithm,
// a known unrevoked EHR client (iss = sub = its ID), the signature under
// one of its keys, the audience, the expiry and a jti. The client is
// returned as soon as it is known, for the audit of a refusal.
func (is Issuer) verify(ctx context.Context, r TokenRequest) (store.MachineClient, jwt.Claims, error) {
	var none jwt.Claims
	switch {
	case r.GrantType != GrantClientCredentials:
		return store.MachineClient{}, none, refuse("unsupported_grant_type", "grant type")
	case r.AssertionType != AssertionTypeJWT:
		return store.MachineClient{}, none, refuse("invalid_request", "assertion type")
	case r.Assertion == "" || len(r.Assertion) > MaxAssertion:
		return store.MachineClient{}, none, refuse("invalid_request", "assertion missing or too long")
	}
	tok, unsafe, err := ParseAssertion(r.Assertion)
	if err != nil {
		return store.MachineClient{}, none, refuse("invalid_client", "malformed assertion")
	}
	client, err := store.MachineClientByID(ctx, is.Env.DB, store.ClientEHR, unsafe.Issuer)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.MachineClient{}, none, refuse("invalid_client", "unknown client")
	case err != nil:
		return store.MachineClient{}, none, err
	case client.RevokedAt != nil:
		return client, none, refuse("invalid_client", "revoked client")
	}
	var keys jose.JSONWebKeySet
	if err := json.Unmarshal(client.JWKS, &keys); err != nil {
		return client, none, err
	}
	var claims jwt.Claims
	if err := tok.Claims(keys, &claims); err != nil {
		return client, none, refuse("invalid_client", "bad signature")
	}
	return client, claims, is.checkClaims(client, claims)
}

// checkClaims applies RFC 7523 §3 and SMART's rules to verified claims.
func (is Issuer) checkClaims(client store.MachineClient, c jwt.Claims) error {
	now := is.Env.Now()
	switch {
	case c.Issuer != client.ID || c.Subject != client.ID:
		return refuse("invalid_client", "iss and sub must be the client id")
	case c.Expiry == nil:
		return refuse("invalid_client", "no exp")
	case c.Expiry.Time().After(now.Add(MaxAssertionLife + Leeway)):
		return refuse("invalid_client", "exp too far ahead")
	case c.ID == "" || len(c.ID) > 255:
		return refuse("invalid_client", "no jti")
	}
	err := c.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{is.TokenURL}, Time: now}, Leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return refuse("invalid_client", "expired")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return refuse("invalid_client", "wrong audience")
	case err != nil:
		return refuse("invalid_client", "claims")
	}
	return nil
}

// ParseAssertion parses a compact JWS with an allowed algorithm and reads
// its claims without verifying them (to find the client's keys). It is
// the network-facing parser of the token endpoint (FuzzParseAssertion).
func ParseAssertion(s string) (*jwt.JSONWebToken, jwt.Claims, error) {
	var c jwt.Claims
	if len(s) > MaxAssertion {
		return nil, c, errors.New("smart: assertion too long")
	}
	tok, err := jwt.ParseSigned(s, algorithms)
	if err != nil {
		return nil, c, err
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return nil, c, errors.New("smart: assertion needs one signature with a kid")
	}
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return nil, c, err
	}
	return tok, c, nil
}

// grantedScopes are the scopes asked for; refused unless the client was
// granted each of them.
func grantedScopes(client store.MachineClient, asked string) ([]string, error) {
	want := strings.Fields(asked)
	if len(want) == 0 {
		return nil, refuse("invalid_scope", "no scope asked")
	}
	var out []string
	for _, s := range want {
		if !slices.Contains(client.Scopes, s) {
			return nil, refuse("invalid_scope", "scope not granted")
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// Caller is a machine client authenticated by its access token.
type Caller struct {
	Client store.MachineClient
	Scopes []string
}

// Authenticate returns the caller whose access token is tok; ErrNoToken
// for an unknown, expired, malformed one or a revoked client's.
func Authenticate(ctx context.Context, env store.Env, tok string) (Caller, error) {
	if !strings.HasPrefix(tok, tokenPrefix) || len(tok) > MaxToken {
		return Caller{}, ErrNoToken
	}
	c, scopes, err := store.ClientByAccessToken(ctx, env.DB, hashToken(tok), env.Now())
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Kind != store.ClientEHR) {
		return Caller{}, ErrNoToken
	}
	return Caller{Client: c, Scopes: scopes}, err
}

// Access is what a FHIR interaction needs.
type Access string

const (
	Read  Access = "read"
	Write Access = "write"
)

// Allows reports whether the caller's scopes permit access to resource
// (a FHIR resource type): system/<resource or *>.<read, write or *>.
func (c Caller) Allows(resource string, a Access) bool {
	for _, s := range c.Scopes {
		res, act, ok := strings.Cut(strings.TrimPrefix(s, "system/"), ".")
		if ok && (res == resource || res == "*") && (act == string(a) || act == "*") {
			return true
		}
	}
	return false
}
