// Package smart is the machine clients of the FHIR API as SMART Backend
// Services defines them: an admin registers an EHR (or integration engine)
// with its public keys and the scopes it is granted; the client signs a
// short JWT assertion with its private key (RFC 7523) and trades it at the
// token endpoint (OAuth 2.0 client credentials) for a short-lived opaque
// access token, kept only as a hash. Revoking the client ends its tokens
// at once. JOSE parsing and signature checks are go-jose's.
package smart

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/store"
)

// Audit actions of EHR clients.
const (
	ActionClientCreate = "client.create"
	ActionClientRevoke = "client.revoke"
	ActionTokenIssue   = "client.token.issue"
	ActionTokenRefuse  = "client.token.refuse"
)

// ActorRole is the audit actor role of a machine client's calls.
const ActorRole = "client"

// Limits of a registration.
const (
	MaxKeys    = 10
	MaxKeyDoc  = 64 << 10 // bytes of a JWKS or PEM document
	MinRSABits = 2048
)

// Scopes an EHR client may be granted (SMART v1 system scopes).
var knownScopes = []string{
	"system/*.read", "system/*.*",
	"system/Patient.read",
	"system/Appointment.read", "system/Appointment.write", "system/Appointment.*",
	"system/Encounter.read",
}

// KnownScopes lists the scopes a client may be granted.
func KnownScopes() []string { return slices.Clone(knownScopes) }

// ParseKeys reads a client's public keys from a JWKS document or PEM
// public keys and returns them as a JWKS document. Every key must be a
// public RSA key of MinRSABits or more (for RS384) or a P-384 key (for
// ES384), with a key ID (a PEM key gets its RFC 7638 thumbprint).
func ParseKeys(doc []byte) ([]byte, error) {
	if len(doc) == 0 || len(doc) > MaxKeyDoc {
		return nil, ErrBadKeys
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		if set, err = parsePEM(doc); err != nil {
			return nil, err
		}
	}
	if len(set.Keys) == 0 || len(set.Keys) > MaxKeys {
		return nil, ErrBadKeys
	}
	for i, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() || !usableKey(k.Key) || k.KeyID == "" {
			return nil, ErrBadKeys
		}
		set.Keys[i].Algorithm = algOf(k.Key)
	}
	return json.Marshal(set)
}

func parsePEM(doc []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	for rest := doc; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return set, ErrBadKeys
		}
		k := jose.JSONWebKey{Key: pub, Use: "sig"}
		tp, err := k.Thumbprint(cryptoSHA256)
		if err != nil {
			return set, ErrBadKeys
		}
		k.KeyID = b64(tp)
		set.Keys = append(set.Keys, k)
	}
	if len(set.Keys) == 0 {
		return set, ErrBadKeys
	}
	return set, nil
}

func usableKey(k any) bool {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen() >= MinRSABits
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P384()
	}
	return false
}

func algOf(k any) string {
	if _, ok := k.(*rsa.PublicKey); ok {
		return string(jose.RS384)
	}
	return string(jose.ES384)
}

// ParseScopes reads a space-separated scope list; every scope must be
// known, and at least one given.
func ParseScopes(s string) ([]string, error) {
	var out []string
	for _, sc := range strings.Fields(s) {
		if !slices.Contains(knownScopes, sc) {
			return nil, ErrBadScope
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, ErrBadScope
	}
	return out, nil
}

// Registration asks for a new EHR client.
type Registration struct {
	Name   string
	Keys   []byte // a JWKS document or PEM public keys
	Scopes string // space-separated
}

// CreateClient registers an EHR client; ev carries the actor (the admin).
func CreateClient(ctx context.Context, env store.Env, r Registration, ev audit.Event) (store.MachineClient, error) {
	name := strings.TrimSpace(r.Name)
	if name == "" || len(name) > 100 || strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return store.MachineClient{}, ErrBadName
	}
	jwks, err := ParseKeys(r.Keys)
	if err != nil {
		return store.MachineClient{}, err
	}
	scopes, err := ParseScopes(r.Scopes)
	if err != nil {
		return store.MachineClient{}, err
	}
	var c store.MachineClient
	ev.Action, ev.ResourceType, ev.Outcome, ev.Reason = ActionClientCreate, "machine_client", audit.Success, "scopes "+strings.Join(scopes, " ")
	err = env.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		c, err = store.CreateEHRClient(ctx, tx, name, jwks, scopes, ev.ActorID, env.Now())
		ev.ResourceID = c.ID
		return err
	})
	return c, err
}

// RevokeClient revokes EHR client id at once: its access tokens stop
// working and it gets no new ones.
func RevokeClient(ctx context.Context, env store.Env, id string, ev audit.Event) (store.MachineClient, error) {
	var c store.MachineClient
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome = ActionClientRevoke, "machine_client", id, audit.Success
	err := env.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		if c, err = store.MachineClientByID(ctx, tx, store.ClientEHR, id); err != nil {
			return err
		}
		c, err = store.RevokeMachineClient(ctx, tx, id, env.Now())
		return err
	})
	return c, err
}

// Clients lists the EHR clients, revoked ones too.
func Clients(ctx context.Context, env store.Env) ([]store.MachineClient, error) {
	return store.MachineClients(ctx, env.DB, store.ClientEHR)
}
