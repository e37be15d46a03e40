package scim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/store"
)

// Audit actions of SCIM tokens.
const (
	ActionTokenCreate = "scim.token.create"
	ActionTokenRevoke = "scim.token.revoke"
)

// tokenPrefix marks OpenVisit SCIM tokens (secret scanners can find them).
const tokenPrefix = "ovscim_"

// MaxToken bounds a presented bearer token.
const MaxToken = 128

var (
	// ErrBadIdP: the identity provider's name is empty, too long or not
	// plain text.
	ErrBadIdP = errors.New("scim: identity provider name must be 1 to 100 printable characters")
	// ErrNoToken: no valid, unrevoked token.
	ErrNoToken = errors.New("scim: invalid token")
)

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// CreateToken registers a SCIM client for the identity provider idp and
// returns it with its bearer token, shown this once (only its hash is
// kept). ev carries the actor (the operator's CLI).
func CreateToken(ctx context.Context, env store.Env, idp string, ev audit.Event) (store.MachineClient, string, error) {
	idp = strings.TrimSpace(idp)
	if idp == "" || len(idp) > 100 || strings.IndexFunc(idp, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return store.MachineClient{}, "", ErrBadIdP
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return store.MachineClient{}, "", err
	}
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	var c store.MachineClient
	ev.Action, ev.ResourceType, ev.Outcome, ev.Reason = ActionTokenCreate, "machine_client", audit.Success, "idp "+idp
	err := env.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		c, err = store.CreateMachineClient(ctx, tx, store.ClientSCIM, idp, hashToken(tok), ev.ActorID, env.Now())
		ev.ResourceID = c.ID
		return err
	})
	return c, tok, err
}

// RevokeToken revokes the SCIM client id at once: its next request is
// refused.
func RevokeToken(ctx context.Context, env store.Env, id string, ev audit.Event) (store.MachineClient, error) {
	var c store.MachineClient
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome = ActionTokenRevoke, "machine_client", id, audit.Success
	err := env.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		c, err = store.RevokeMachineClient(ctx, tx, id, env.Now())
		ev.Reason = "idp " + c.Name
		return err
	})
	return c, err
}

// Tokens lists the SCIM clients, revoked ones too.
func Tokens(ctx context.Context, env store.Env) ([]store.MachineClient, error) {
	return store.MachineClients(ctx, env.DB, store.ClientSCIM)
}

// Authenticate returns the SCIM client whose bearer token is tok;
// ErrNoToken for an unknown, revoked or malformed one.
func Authenticate(ctx context.Context, env store.Env, tok string) (store.MachineClient, error) {
	if !strings.HasPrefix(tok, tokenPrefix) || len(tok) > MaxToken {
		return store.MachineClient{}, ErrNoToken
	}
	c, err := store.MachineClientByToken(ctx, env.DB, hashToken(tok), env.Now())
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Kind != store.ClientSCIM) {
		return store.MachineClient{}, ErrNoToken
	}
	return c, err
}
