package smart_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/smart"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

const tokenURL = "https://openvisit.test/oauth/token"

// clientKey is a client's private key and its kid.
type clientKey struct {
	key any
	kid string
	alg jose.SignatureAlgorithm
}

func newECKey(t testing.TB, kid string) clientKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{key: k, kid: kid, alg: jose.ES384}
}

func (k clientKey) jwks(t testing.TB) []byte {
	var pub any
	switch p := k.key.(type) {
	case *ecdsa.PrivateKey:
		pub = p.Public()
	case *rsa.PrivateKey:
		pub = p.Public()
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: k.kid, Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign makes an assertion with claims c.
func (k clientKey) sign(t testing.TB, c jwt.Claims) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func claims(client, aud, jti string, exp time.Time) jwt.Claims {
	return jwt.Claims{Issuer: client, Subject: client, Audience: jwt.Audience{aud}, ID: jti, Expiry: jwt.NewNumericDate(exp)}
}

func register(t *testing.T, env store.Env, k clientKey, scopes string) store.MachineClient {
	t.Helper()
	c, err := smart.CreateClient(context.Background(), env, smart.Registration{Name: "Test EHR", Keys: k.jwks(t), Scopes: scopes},
		audit.Event{ActorID: "operator", ActorRole: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func request(assertion, scope string) smart.TokenRequest {
	return smart.TokenRequest{GrantType: smart.GrantClientCredentials, AssertionType: smart.AssertionTypeJWT,
		Assertion: assertion, Scope: scope}
}

// TestClientCredentialsRejected: the token endpoint refuses an expired
// assertion, one for another audience, a replayed jti, a revoked or
// unknown client, a bad signature, an algorithm off the list, an
// assertion living too long, and a scope not granted; a good assertion
// gets a token whose client's revocation ends it at once.
func TestClientCredentialsRejected(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	now := time.Now()
	env := store.Env{DB: db, Clock: func() time.Time { return now }}
	is := smart.Issuer{Env: env, TokenURL: tokenURL}
	key := newECKey(t, "k1")
	client := register(t, env, key, "system/Patient.read system/Appointment.*")
	revoked := register(t, env, newECKey(t, "k2"), "system/Patient.read")
	if _, err := smart.RevokeClient(ctx, env, revoked.ID, audit.Event{ActorID: "operator", ActorRole: "cli"}); err != nil {
		t.Fatal(err)
	}
	stranger := newECKey(t, "k1") // same kid, another key
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")},
		(&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	hsToken, _ := jwt.Signed(hs).Claims(claims(client.ID, tokenURL, "hs", now.Add(time.Minute))).Serialize()
	rs256 := clientKey{key: rsaKey, kid: "k1", alg: jose.RS256}

	replayed := key.sign(t, claims(client.ID, tokenURL, "once", now.Add(time.Minute)))
	if _, err := is.Issue(ctx, request(replayed, "system/Patient.read"), audit.Event{}); err != nil {
		t.Fatalf("a good assertion was refused: %v", err)
	}
	cases := []struct {
		name, assertion, scope, code, reason string
	}{
		{"expired", key.sign(t, claims(client.ID, tokenURL, "e", now.Add(-2*time.Minute))), "system/Patient.read", "invalid_client", "expired"},
		{"wrong audience", key.sign(t, claims(client.ID, "https://other.test/token", "a", now.Add(time.Minute))), "system/Patient.read", "invalid_client", "wrong audience"},
		{"replayed jti", replayed, "system/Patient.read", "invalid_grant", "replayed jti"},
		{"revoked client", key.sign(t, claims(revoked.ID, tokenURL, "r", now.Add(time.Minute))), "system/Patient.read", "invalid_client", "revoked client"},
		{"unknown client", key.sign(t, claims("7d0f3e0e-4f5a-4d7e-9a55-1b2c3d4e5f60", tokenURL, "u", now.Add(time.Minute))), "system/Patient.read", "invalid_client", "unknown client"},
		{"bad signature", stranger.sign(t, claims(client.ID, tokenURL, "s", now.Add(time.Minute))), "system/Patient.read", "invalid_client", "bad signature"},
		{"HS256", hsToken, "system/Patient.read", "invalid_client", "malformed assertion"},
		{"RS256", rs256.sign(t, claims(client.ID, tokenURL, "rs", now.Add(time.Minute))), "system/Patient.read", "invalid_client", "malformed assertion"},
		{"exp too far ahead", key.sign(t, claims(client.ID, tokenURL, "f", now.Add(time.Hour))), "system/Patient.read", "invalid_client", "exp too far ahead"},
		{"iss is not sub", key.sign(t, jwt.Claims{Issuer: client.ID, Subject: "someone", Audience: jwt.Audience{tokenURL}, ID: "x",
			Expiry: jwt.NewNumericDate(now.Add(time.Minute))}), "system/Patient.read", "invalid_client", "iss and sub must be the client id"},
		{"no jti", key.sign(t, claims(client.ID, tokenURL, "", now.Add(time.Minute))), "system/Patient.read", "invalid_client", "no jti"},
		{"scope not granted", key.sign(t, claims(client.ID, tokenURL, "g", now.Add(time.Minute))), "system/Encounter.read", "invalid_scope", "scope not granted"},
		{"not a JWT", "not.a.jwt", "system/Patient.read", "invalid_client", "malformed assertion"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := is.Issue(ctx, request(tc.assertion, tc.scope), audit.Event{})
			var e *smart.Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Reason != tc.reason {
				t.Fatalf("Issue = %v, want OAuth error %s (%s)", err, tc.code, tc.reason)
			}
		})
	}
	t.Run("wrong grant type", func(t *testing.T) {
		r := request(key.sign(t, claims(client.ID, tokenURL, "gt", now.Add(time.Minute))), "system/Patient.read")
		r.GrantType = "password"
		var e *smart.Error
		if _, err := is.Issue(ctx, r, audit.Event{}); !errors.As(err, &e) || e.Code != "unsupported_grant_type" {
			t.Fatalf("Issue = %v, want unsupported_grant_type", err)
		}
	})
	t.Run("revocation ends the token at once", func(t *testing.T) {
		tok := issue(t, is, key, client.ID, "ok-1", "system/Patient.read system/Appointment.*")
		caller, err := smart.Authenticate(ctx, env, tok.Token)
		if err != nil || caller.Client.ID != client.ID || !caller.Allows("Appointment", smart.Write) || caller.Allows("Encounter", smart.Read) {
			t.Fatalf("Authenticate = %+v, %v; want the client with its scopes", caller, err)
		}
		if _, err := smart.RevokeClient(ctx, env, client.ID, audit.Event{ActorID: "operator", ActorRole: "cli"}); err != nil {
			t.Fatal(err)
		}
		if _, err := smart.Authenticate(ctx, env, tok.Token); !errors.Is(err, smart.ErrNoToken) {
			t.Fatalf("after revocation Authenticate = %v, want ErrNoToken", err)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		c := register(t, env, key, "system/Patient.read")
		tok := issue(t, is, key, c.ID, "ok-2", "system/Patient.read")
		later := store.Env{DB: db, Clock: func() time.Time { return now.Add(smart.TokenLife + time.Second) }}
		if _, err := smart.Authenticate(ctx, later, tok.Token); !errors.Is(err, smart.ErrNoToken) {
			t.Fatalf("an expired token: Authenticate = %v, want ErrNoToken", err)
		}
	})
}

func issue(t *testing.T, is smart.Issuer, k clientKey, client, jti, scope string) smart.AccessToken {
	t.Helper()
	tok, err := is.Issue(context.Background(), request(k.sign(t, claims(client, tokenURL, jti, is.Env.Now().Add(time.Minute))), scope), audit.Event{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestParseKeys: JWKS and PEM public keys are accepted when RS384/ES384
// usable; private keys, small RSA keys and other curves are not.
func TestParseKeys(t *testing.T) {
	ec := newECKey(t, "e")
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pemOf := func(pub any) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	private, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: ec.key, KeyID: "p"}}})
	for _, tc := range []struct {
		name string
		doc  []byte
		ok   bool
	}{
		{"jwks ES384", ec.jwks(t), true},
		{"pem RSA", pemOf(rsaKey.Public()), true},
		{"pem small RSA", pemOf(small.Public()), false},
		{"pem P-256", pemOf(p256.Public()), false},
		{"private jwk", private, false},
		{"garbage", []byte("hello"), false},
	} {
		_, err := smart.ParseKeys(tc.doc)
		if (err == nil) != tc.ok {
			t.Errorf("%s: ParseKeys = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
