package sso

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// testIssuer is a test-local OpenID provider: a discovery document and a
// JWKS over TLS, and a key to sign ID tokens with.
type testIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{key: key, kid: "k1"}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": ti.srv.URL, "jwks_uri": ti.srv.URL + "/keys",
			"authorization_endpoint": ti.srv.URL + "/authorize", "token_endpoint": ti.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: ti.kid, Algorithm: "RS256", Use: "sig"}}})
	})
	ti.srv = httptest.NewTLSServer(mux)
	t.Cleanup(ti.srv.Close)
	return ti
}

// sign makes a compact JWS of claims with key (kid set), by alg.
func sign(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unsigned is a token with "alg": "none" and an empty signature.
func unsigned(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return strings.TrimRight(jsonB64(b), "=")
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(claims) + "."
}

func TestOIDCRejectsForgedToken(t *testing.T) {
	ti := newTestIssuer(t)
	ctx := oidc.ClientContext(context.Background(), ti.srv.Client())
	p, err := oidc.NewProvider(ctx, ti.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	verifier := p.Verifier(&oidc.Config{ClientID: "openvisit"})
	good := func() map[string]any {
		return map[string]any{"iss": ti.srv.URL, "aud": "openvisit", "sub": "person-1", "nonce": "n-1",
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "groups": []string{"doctors"}}
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := verifyIDToken(ctx, verifier, sign(t, ti.key, ti.kid, good()), "n-1", "groups"); err != nil ||
		c.Subject != "person-1" || len(c.Groups) != 1 {
		t.Fatalf("a genuine token is refused: %+v, %v", c, err)
	}
	with := func(k string, v any) map[string]any { m := good(); m[k] = v; return m }
	for name, tc := range map[string]struct {
		token, nonce string
	}{
		"wrong issuer":   {sign(t, ti.key, ti.kid, with("iss", "https://evil.example")), "n-1"},
		"wrong audience": {sign(t, ti.key, ti.kid, with("aud", "someone-else")), "n-1"},
		"wrong nonce":    {sign(t, ti.key, ti.kid, good()), "n-2"},
		"no nonce":       {sign(t, ti.key, ti.kid, with("nonce", "")), ""},
		"expired":        {sign(t, ti.key, ti.kid, with("exp", now.Add(-time.Minute).Unix())), "n-1"},
		"bad signature":  {sign(t, other, ti.kid, good()), "n-1"},
		"unknown key":    {sign(t, other, "k-unknown", good()), "n-1"},
		"alg none":       {unsigned(good()), "n-1"},
		"tampered":       {tamper(sign(t, ti.key, ti.kid, good())), "n-1"},
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := verifyIDToken(ctx, verifier, tc.token, tc.nonce, "groups"); err == nil {
				t.Fatalf("forged token accepted: %+v", c)
			}
		})
	}
}

// tamper swaps the payload for one naming another subject, keeping the
// signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := jsonB64Decode(parts[1])
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["sub"] = "someone-else"
	nb, _ := json.Marshal(m)
	parts[1] = strings.TrimRight(jsonB64(nb), "=")
	return strings.Join(parts, ".")
}

func jsonB64(b []byte) string                { return base64.RawURLEncoding.EncodeToString(b) }
func jsonB64Decode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
