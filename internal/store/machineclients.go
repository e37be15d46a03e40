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
)

// MachineClient is software that calls the API with a bearer token (only
// the token's SHA-256 is stored).
type MachineClient struct {
	ID         string
	Kind       string
	Name       string
	CreatedAt  time.Time
	CreatedBy  string
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

const clientColumns = `id::text, kind, name, created_at, created_by, last_used_at, revoked_at`

func scanClient(r pgx.Row) (MachineClient, error) {
	var m MachineClient
	err := r.Scan(&m.ID, &m.Kind, &m.Name, &m.CreatedAt, &m.CreatedBy, &m.LastUsedAt, &m.RevokedAt)
	return m, notFound(err)
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
