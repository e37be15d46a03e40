package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// Machine client kinds.
const (
	// ClientSCIM is an identity provider's SCIM provisioning client.
	ClientSCIM = "scim"
	// ClientEHR is an EHR or integration engine that signs in with a
	// signed JWT assertion (SMART Backend Services) and calls FHIR.
	ClientEHR = "ehr"
)

// MachineClient is software that calls the API with a bearer token (only
// the token's SHA-256 is stored). An EHR client has no static token: it
// has public keys (JWKS) and granted scopes, and is issued access tokens.
type MachineClient struct {
	ID         string
	Kind       string
	Name       string
	CreatedAt  time.Time
	CreatedBy  string
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	JWKS       []byte   // EHR clients: the public keys, a JWKS document
	Scopes     []string // EHR clients: the scopes granted
}

const clientColumns = `id::text, kind, name, created_at, created_by, last_used_at, revoked_at, jwks::text, scopes`

func scanClient(r pgx.Row) (MachineClient, error) {
	var m MachineClient
	var jwks *string
	err := r.Scan(&m.ID, &m.Kind, &m.Name, &m.CreatedAt, &m.CreatedBy, &m.LastUsedAt, &m.RevokedAt, &jwks, &m.Scopes)
	if jwks != nil {
		m.JWKS = []byte(*jwks)
	}
	return m, notFound(err)
}

// CreateEHRClient registers an EHR client named name with its public keys
// (a JWKS document) and granted scopes.
func CreateEHRClient(ctx context.Context, db DBTX, name string, jwks []byte, scopes []string, createdBy string, now time.Time) (MachineClient, error) {
	return scanClient(db.QueryRow(ctx, `INSERT INTO machine_clients (id, kind, name, jwks, scopes, created_at, created_by)
		VALUES ($1, 'ehr', $2, $3::jsonb, $4, $5, $6) RETURNING `+clientColumns,
		uuid.NewString(), name, string(jwks), scopes, now, createdBy))
}

// MachineClientByID finds client id of kind, revoked or not.
func MachineClientByID(ctx context.Context, db DBTX, kind, id string) (MachineClient, error) {
	if _, err := uuid.Parse(id); err != nil {
		return MachineClient{}, ErrNotFound
	}
	return scanClient(db.QueryRow(ctx, `SELECT `+clientColumns+` FROM machine_clients WHERE id = $1 AND kind = $2`, id, kind))
}

// SeeAssertion records the jti of client's assertion, kept until expires;
// ErrConflict when it was seen before (a replay). Expired jtis are
// forgotten on the way.
func SeeAssertion(ctx context.Context, db DBTX, client, jti string, expires, now time.Time) error {
	if _, err := db.Exec(ctx, `DELETE FROM client_assertion_jtis WHERE expires_at < $1`, now); err != nil {
		return fmt.Errorf("store: see assertion: %w", err)
	}
	tag, err := db.Exec(ctx, `INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, client, jti, expires)
	if err != nil {
		return fmt.Errorf("store: see assertion: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrConflict
	}
	return nil
}

// CreateAccessToken stores an access token of client (its hash) with its
// scopes, valid until expires.
func CreateAccessToken(ctx context.Context, db DBTX, hash []byte, client string, scopes []string, now, expires time.Time) error {
	if _, err := db.Exec(ctx, `DELETE FROM client_access_tokens WHERE expires_at < $1`, now); err != nil {
		return fmt.Errorf("store: access token: %w", err)
	}
	_, err := db.Exec(ctx, `INSERT INTO client_access_tokens (token_hash, client_id, scopes, issued_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, hash, client, scopes, now, expires)
	if err != nil {
		return fmt.Errorf("store: access token: %w", err)
	}
	return nil
}

// ClientByAccessToken finds the unrevoked client holding the unexpired
// access token that hashes to hash, with the token's scopes, and records
// its use. ErrNotFound otherwise: a revoked client's tokens end with it.
func ClientByAccessToken(ctx context.Context, db DBTX, hash []byte, now time.Time) (MachineClient, []string, error) {
	var scopes []string
	var m MachineClient
	var jwks *string
	err := db.QueryRow(ctx, `UPDATE machine_clients c SET last_used_at = $2 FROM client_access_tokens t
		WHERE t.token_hash = $1 AND t.client_id = c.id AND t.expires_at > $2 AND c.revoked_at IS NULL
		RETURNING c.id::text, c.kind, c.name, c.created_at, c.created_by, c.last_used_at, c.revoked_at, c.jwks::text, c.scopes, t.scopes`,
		hash, now).Scan(&m.ID, &m.Kind, &m.Name, &m.CreatedAt, &m.CreatedBy, &m.LastUsedAt, &m.RevokedAt, &jwks, &m.Scopes, &scopes)
	if jwks != nil {
		m.JWKS = []byte(*jwks)
	}
	return m, scopes, notFound(err)
}

// CreateMachineClient registers a client of kind named name whose token
// hashes to tokenHash.
func CreateMachineClient(ctx context.Context, db DBTX, kind, name string, tokenHash []byte, createdBy string, now time.Time) (MachineClient, error) {
	return scanClient(db.QueryRow(ctx, `INSERT INTO machine_clients (id, kind, name, token_hash, created_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+clientColumns, uuid.NewString(), kind, name, tokenHash, now, createdBy))
}

// MachineClientByToken finds the unrevoked client whose token hashes to
// tokenHash and records its use.
func MachineClientByToken(ctx context.Context, db DBTX, tokenHash []byte, now time.Time) (MachineClient, error) {
	return scanClient(db.QueryRow(ctx, `UPDATE machine_clients SET last_used_at = $2
		WHERE token_hash = $1 AND revoked_at IS NULL RETURNING `+clientColumns, tokenHash, now))
}

// MachineClients lists the clients of kind, newest first.
func MachineClients(ctx context.Context, db DBTX, kind string) ([]MachineClient, error) {
	rows, err := db.Query(ctx, `SELECT `+clientColumns+` FROM machine_clients WHERE kind = $1 ORDER BY created_at DESC LIMIT 1000`, kind)
	if err != nil {
		return nil, fmt.Errorf("store: machine clients: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (MachineClient, error) { return scanClient(r) })
}

// RevokeMachineClient revokes the client id; ErrNotFound when there is no
// such unrevoked client.
func RevokeMachineClient(ctx context.Context, db DBTX, id string, now time.Time) (MachineClient, error) {
	if _, err := uuid.Parse(id); err != nil {
		return MachineClient{}, ErrNotFound
	}
	return scanClient(db.QueryRow(ctx, `UPDATE machine_clients SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL
		RETURNING `+clientColumns, id, now))
}

// SetExternalID stores the identity provider's id for a user ("" clears it).
func SetExternalID(ctx context.Context, db DBTX, id ids.UserID, external string) error {
	return updateUser(ctx, db, id, `external_id = $2`, nullable(external))
}

// UpdateProfile changes a user's address and name (SCIM replace).
// ErrConflict when the address is another user's.
func UpdateProfile(ctx context.Context, db DBTX, id ids.UserID, email, name string) error {
	err := updateUser(ctx, db, id, `email = $2, name = $3`, NormalizeEmail(email), name)
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}
