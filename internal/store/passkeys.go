package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// Passkey is a staff user's registered WebAuthn credential: what the
// verifier needs (public key, sign count, flags, transports) and the name
// its owner gave it.
type Passkey struct {
	ID              string
	UserID          ids.UserID
	CredentialID    []byte
	PublicKey       []byte
	AttestationType string
	AAGUID          []byte
	SignCount       uint32
	CloneWarning    bool
	Transports      []string
	Attachment      string
	UserPresent     bool
	UserVerified    bool
	BackupEligible  bool
	BackupState     bool
	Name            string
	CreatedAt       time.Time
	LastUsedAt      *time.Time
}

const passkeyColumns = `id::text, user_id::text, credential_id, public_key, attestation_type, aaguid, sign_count,
	clone_warning, transports, attachment, user_present, user_verified, backup_eligible, backup_state, name,
	created_at, last_used_at`

func scanPasskey(r pgx.Row) (Passkey, error) {
	var p Passkey
	var user string
	var count int64
	err := r.Scan(&p.ID, &user, &p.CredentialID, &p.PublicKey, &p.AttestationType, &p.AAGUID, &count,
		&p.CloneWarning, &p.Transports, &p.Attachment, &p.UserPresent, &p.UserVerified, &p.BackupEligible,
		&p.BackupState, &p.Name, &p.CreatedAt, &p.LastUsedAt)
	p.UserID, p.SignCount = ids.UserID(user), uint32(count)
	return p, notFound(err)
}

// AddPasskey stores a new credential of p.UserID and returns its id.
// ErrConflict when the credential is registered already (to anyone).
func AddPasskey(ctx context.Context, db DBTX, p Passkey) (string, error) {
	id := uuid.NewString()
	if p.Transports == nil {
		p.Transports = []string{}
	}
	_, err := db.Exec(ctx, `INSERT INTO webauthn_credentials (id, user_id, credential_id, public_key, attestation_type,
		aaguid, sign_count, clone_warning, transports, attachment, user_present, user_verified, backup_eligible,
		backup_state, name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		id, string(p.UserID), p.CredentialID, p.PublicKey, p.AttestationType, p.AAGUID, int64(p.SignCount),
		p.CloneWarning, p.Transports, p.Attachment, p.UserPresent, p.UserVerified, p.BackupEligible, p.BackupState,
		p.Name, p.CreatedAt)
	if isUniqueViolation(err) {
		return "", ErrConflict
	}
	if err != nil {
		return "", fmt.Errorf("store: add passkey: %w", err)
	}
	return id, nil
}

// Passkeys returns a user's passkeys, oldest first.
func Passkeys(ctx context.Context, db DBTX, user ids.UserID) ([]Passkey, error) {
	if !ids.Valid(string(user)) {
		return nil, ErrNotFound
	}
	rows, err := db.Query(ctx, `SELECT `+passkeyColumns+` FROM webauthn_credentials WHERE user_id = $1
		ORDER BY created_at, id LIMIT 100`, string(user))
	if err != nil {
		return nil, fmt.Errorf("store: passkeys: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Passkey, error) { return scanPasskey(r) })
}

// PasskeyByCredentialID finds a credential by the id the authenticator
// reports.
func PasskeyByCredentialID(ctx context.Context, db DBTX, credID []byte) (Passkey, error) {
	return scanPasskey(db.QueryRow(ctx, `SELECT `+passkeyColumns+` FROM webauthn_credentials WHERE credential_id = $1`, credID))
}

// RecordPasskeyUse stores a credential's new sign count, flags and clone
// warning after an assertion.
func RecordPasskeyUse(ctx context.Context, db DBTX, p Passkey, now time.Time) error {
	tag, err := db.Exec(ctx, `UPDATE webauthn_credentials SET sign_count = $2, clone_warning = $3, user_verified = $4,
		backup_state = $5, last_used_at = $6 WHERE id = $1`,
		p.ID, int64(p.SignCount), p.CloneWarning, p.UserVerified, p.BackupState, now)
	if err != nil {
		return fmt.Errorf("store: record passkey use: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// RenamePasskey names user's passkey id; ErrNotFound when the user has no
// such passkey.
func RenamePasskey(ctx context.Context, db DBTX, user ids.UserID, id, name string) error {
	return onePasskey(ctx, db, `UPDATE webauthn_credentials SET name = $3 WHERE user_id = $1 AND id = $2`, user, id, name)
}

// RemovePasskey deletes user's passkey id; ErrNotFound when the user has
// no such passkey.
func RemovePasskey(ctx context.Context, db DBTX, user ids.UserID, id string) error {
	return onePasskey(ctx, db, `DELETE FROM webauthn_credentials WHERE user_id = $1 AND id = $2`, user, id)
}

func onePasskey(ctx context.Context, db DBTX, sql string, user ids.UserID, id string, args ...any) error {
	if !ids.Valid(string(user)) || !ids.Valid(id) {
		return ErrNotFound
	}
	tag, err := db.Exec(ctx, sql, append([]any{string(user), id}, args...)...)
	if err != nil {
		return fmt.Errorf("store: passkey: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// Ceremony purposes.
const (
	CeremonyRegister     = "register"
	CeremonySignin       = "signin"
	CeremonySecondFactor = "second_factor"
)

// Ceremony is a WebAuthn ceremony in progress: the library's session data
// (JSON) kept server-side, found by the hash of the browser's token.
type Ceremony struct {
	TokenHash   []byte
	Purpose     string
	UserID      ids.UserID // register only
	SessionHash []byte     // register only: the staff session that began it
	Data        []byte
	ExpiresAt   time.Time
}

// SaveCeremony stores c, removing ceremonies past their expiry on the way
// (they are few and short-lived).
func SaveCeremony(ctx context.Context, db DBTX, c Ceremony, now time.Time) error {
	if _, err := db.Exec(ctx, `DELETE FROM webauthn_ceremonies WHERE expires_at < $1`, now); err != nil {
		return fmt.Errorf("store: expire ceremonies: %w", err)
	}
	_, err := db.Exec(ctx, `INSERT INTO webauthn_ceremonies (token_hash, purpose, user_id, session_hash, data, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.TokenHash, c.Purpose, nullable(string(c.UserID)), c.SessionHash, c.Data, c.ExpiresAt)
	if err != nil {
		return fmt.Errorf("store: save ceremony: %w", err)
	}
	return nil
}

// TakeCeremony removes and returns the unexpired ceremony of purpose whose
// token hashes to hash: a ceremony is finished at most once.
func TakeCeremony(ctx context.Context, db DBTX, hash []byte, purpose string, now time.Time) (Ceremony, error) {
	c := Ceremony{TokenHash: hash}
	var user *string
	err := db.QueryRow(ctx, `DELETE FROM webauthn_ceremonies WHERE token_hash = $1 AND purpose = $2 AND expires_at >= $3
		RETURNING purpose, user_id::text, session_hash, data, expires_at`, hash, purpose, now).
		Scan(&c.Purpose, &user, &c.SessionHash, &c.Data, &c.ExpiresAt)
	if user != nil {
		c.UserID = ids.UserID(*user)
	}
	return c, notFound(err)
}
