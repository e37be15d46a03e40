package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// Staff roles.
const (
	RoleProvider = "provider"
	RoleAdmin    = "admin"
)

// ValidRole reports whether r is a staff role.
func ValidRole(r string) bool { return r == RoleProvider || r == RoleAdmin }

// User is a staff account.
type User struct {
	ID             ids.UserID
	Email          string
	Name           string
	Role           string
	PasswordHash   string
	TOTPSecretEnc  []byte
	TOTPPendingEnc []byte
	TOTPLastStep   int64
	MFAEnrolledAt  *time.Time
	FailedLogins   int
	LastFailedAt   *time.Time
	LockedAt       *time.Time
	DisabledAt     *time.Time
	CreatedAt      time.Time
	// LastSigninAt is when a staff session was last opened; nil: never.
	LastSigninAt *time.Time
	// ExternalID is the identity provider's id for the account (SCIM).
	ExternalID string
}

// Active reports whether u may sign in at all.
func (u User) Active() bool {
	return u.DisabledAt == nil && u.LockedAt == nil && u.PasswordHash != "" && u.MFAEnrolledAt != nil
}

const userColumns = `id::text, email, name, role, COALESCE(password_hash, ''), totp_secret_enc, totp_pending_enc,
	totp_last_step, mfa_enrolled_at, failed_logins, last_failed_at, locked_at, disabled_at, created_at,
	last_signin_at, COALESCE(external_id, '')`

func scanUser(r pgx.Row) (User, error) {
	var u User
	var id string
	err := r.Scan(&id, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &u.TOTPSecretEnc, &u.TOTPPendingEnc,
		&u.TOTPLastStep, &u.MFAEnrolledAt, &u.FailedLogins, &u.LastFailedAt, &u.LockedAt, &u.DisabledAt, &u.CreatedAt,
		&u.LastSigninAt, &u.ExternalID)
	u.ID = ids.UserID(id)
	return u, notFound(err)
}

// NormalizeEmail trims and lower-cases an address for lookup.
func NormalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// CreateUser adds a staff user with no password or MFA yet. ErrConflict
// when the email is taken.
func CreateUser(ctx context.Context, db DBTX, email, name, role string) (User, error) {
	if !ValidRole(role) {
		return User{}, fmt.Errorf("store: create user: unknown role")
	}
	id := uuid.NewString()
	row := db.QueryRow(ctx, `INSERT INTO users (id, email, name, role) VALUES ($1, $2, $3, $4) RETURNING `+userColumns,
		id, NormalizeEmail(email), strings.TrimSpace(name), role)
	u, err := scanUser(row)
	if isUniqueViolation(err) {
		return User{}, ErrConflict
	}
	if err != nil {
		return User{}, fmt.Errorf("store: create user: %w", err)
	}
	return u, nil
}

// UserByEmail finds a user by address.
func UserByEmail(ctx context.Context, db DBTX, email string) (User, error) {
	return scanUser(db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = $1`, NormalizeEmail(email)))
}

// UserByID finds a user; forUpdate locks the row in a transaction.
func UserByID(ctx context.Context, db DBTX, id ids.UserID, forUpdate bool) (User, error) {
	if !ids.Valid(string(id)) {
		return User{}, ErrNotFound
	}
	q := `SELECT ` + userColumns + ` FROM users WHERE id = $1`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	return scanUser(db.QueryRow(ctx, q, string(id)))
}

// ListUsers returns every staff user, by email.
func ListUsers(ctx context.Context, db DBTX) ([]User, error) {
	rows, err := db.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY lower(email) LIMIT 10000`)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
}

// CountAdmins counts admins who can sign in (enrolled, not disabled).
func CountAdmins(ctx context.Context, db DBTX) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL
		AND password_hash IS NOT NULL AND mfa_enrolled_at IS NOT NULL`).Scan(&n)
	return n, err
}

// UpdateUser runs one of the user changes below and reports ErrNotFound when
// no row matched.
func updateUser(ctx context.Context, db DBTX, id ids.UserID, set string, args ...any) error {
	if !ids.Valid(string(id)) {
		return ErrNotFound
	}
	tag, err := db.Exec(ctx, `UPDATE users SET `+set+`, updated_at = now() WHERE id = $1`, append([]any{string(id)}, args...)...)
	if err != nil {
		return fmt.Errorf("store: update user: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// SetRole changes a user's role.
func SetRole(ctx context.Context, db DBTX, id ids.UserID, role string) error {
	if !ValidRole(role) {
		return fmt.Errorf("store: set role: unknown role")
	}
	return updateUser(ctx, db, id, `role = $2`, role)
}

// SetDisabled disables (at) or re-enables (nil) a user. Disabling also
// voids the user's unused setup links (invite, MFA reset), so that no link
// issued before enrols the account later; re-enabling does not revive them
// (an admin issues a new one). Run it with the user's row locked, before
// touching their links: the lock order every setup-link path keeps.
func SetDisabled(ctx context.Context, db DBTX, id ids.UserID, at *time.Time) error {
	if err := updateUser(ctx, db, id, `disabled_at = $2`, at); err != nil {
		return err
	}
	if at == nil {
		return nil
	}
	if _, err := db.Exec(ctx, `UPDATE setup_links SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL`, string(id), *at); err != nil {
		return fmt.Errorf("store: void setup links: %w", err)
	}
	return nil
}

// Unlock clears a lock and the failure count.
func Unlock(ctx context.Context, db DBTX, id ids.UserID) error {
	return updateUser(ctx, db, id, `locked_at = NULL, failed_logins = 0, last_failed_at = NULL`)
}

// ResetMFA removes the user's second factors — TOTP secret, recovery codes
// and passkeys; they enrol again through a setup link.
func ResetMFA(ctx context.Context, db DBTX, id ids.UserID) error {
	if err := updateUser(ctx, db, id, `totp_secret_enc = NULL, totp_pending_enc = NULL, totp_last_step = 0, mfa_enrolled_at = NULL`); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `DELETE FROM webauthn_credentials WHERE user_id = $1`, string(id)); err != nil {
		return fmt.Errorf("store: reset passkeys: %w", err)
	}
	_, err := db.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, string(id))
	return err
}

// RecordLoginFailure counts a failed sign-in; lockAt locks the account when
// the count reaches it. It returns the new count and whether it is locked.
func RecordLoginFailure(ctx context.Context, db DBTX, id ids.UserID, now time.Time, lockAt int) (int, bool, error) {
	var n int
	var locked bool
	err := db.QueryRow(ctx, `UPDATE users SET failed_logins = failed_logins + 1, last_failed_at = $2,
		locked_at = CASE WHEN locked_at IS NULL AND failed_logins + 1 >= $3 THEN $2 ELSE locked_at END
		WHERE id = $1 RETURNING failed_logins, locked_at IS NOT NULL`, string(id), now, lockAt).Scan(&n, &locked)
	return n, locked, notFound(err)
}

// RecordLoginSuccess resets the failure count, records the sign-in's time
// (last_signin_at) and stores the TOTP step used (so that it is never
// accepted again) and, when rehashed, the new hash.
func RecordLoginSuccess(ctx context.Context, db DBTX, id ids.UserID, step int64, newHash string, now time.Time) error {
	return updateUser(ctx, db, id, `failed_logins = 0, last_failed_at = NULL,
		totp_last_step = GREATEST(totp_last_step, $2),
		password_hash = COALESCE(NULLIF($3, ''), password_hash), last_signin_at = $4`, step, newHash, now)
}

// DormantUsers returns the users who can still sign in (not disabled) and
// have not signed in since before (or never, and were created before it),
// the longest dormant first.
func DormantUsers(ctx context.Context, db DBTX, before time.Time) ([]User, error) {
	rows, err := db.Query(ctx, `SELECT `+userColumns+` FROM users WHERE disabled_at IS NULL
		AND COALESCE(last_signin_at, created_at) < $1
		ORDER BY COALESCE(last_signin_at, created_at), lower(email) LIMIT 10000`, before)
	if err != nil {
		return nil, fmt.Errorf("store: dormant users: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
}

// SetTOTPStep records a used TOTP step (on a failure after a valid code, so
// the code still cannot be replayed).
func SetTOTPStep(ctx context.Context, db DBTX, id ids.UserID, step int64) error {
	return updateUser(ctx, db, id, `totp_last_step = GREATEST(totp_last_step, $2)`, step)
}

// SetPendingTOTP stores a sealed TOTP secret awaiting its first code.
func SetPendingTOTP(ctx context.Context, db DBTX, id ids.UserID, sealed []byte) error {
	return updateUser(ctx, db, id, `totp_pending_enc = $2`, sealed)
}

// CompleteSetup sets the password, promotes the pending TOTP secret, stores
// the recovery code hashes and the accepted step.
func CompleteSetup(ctx context.Context, db DBTX, id ids.UserID, passwordHash string, step int64, recovery [][]byte, now time.Time) error {
	if err := updateUser(ctx, db, id, `password_hash = $2, totp_secret_enc = totp_pending_enc, totp_pending_enc = NULL,
		totp_last_step = $3, mfa_enrolled_at = $4, failed_logins = 0, locked_at = NULL`, passwordHash, step, now); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, string(id)); err != nil {
		return fmt.Errorf("store: recovery codes: %w", err)
	}
	for _, h := range recovery {
		if _, err := db.Exec(ctx, `INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)`, string(id), h); err != nil {
			return fmt.Errorf("store: recovery codes: %w", err)
		}
	}
	return nil
}

// RecoveryCodeHashes returns a user's unused recovery code hashes.
func RecoveryCodeHashes(ctx context.Context, db DBTX, id ids.UserID) ([][]byte, error) {
	rows, err := db.Query(ctx, `SELECT code_hash FROM recovery_codes WHERE user_id = $1`, string(id))
	if err != nil {
		return nil, fmt.Errorf("store: recovery codes: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[[]byte])
}

// UseRecoveryCode deletes a recovery code; false when it was already used.
func UseRecoveryCode(ctx context.Context, db DBTX, id ids.UserID, hash []byte) (bool, error) {
	tag, err := db.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1 AND code_hash = $2`, string(id), hash)
	if err != nil {
		return false, fmt.Errorf("store: use recovery code: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Setup link purposes.
const (
	PurposeInvite   = "invite"
	PurposeResetMFA = "reset_mfa"
)

// SetupLink is a one-time link to set a password and enrol TOTP.
type SetupLink struct {
	UserID    ids.UserID
	Purpose   string
	ExpiresAt time.Time
}

func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// CreateSetupLink stores a new link for user and returns its secret; older
// unused links of the user are voided.
func CreateSetupLink(ctx context.Context, db DBTX, id ids.UserID, purpose string, expires time.Time) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("store: setup link: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	if _, err := db.Exec(ctx, `UPDATE setup_links SET used_at = now() WHERE user_id = $1 AND used_at IS NULL`, string(id)); err != nil {
		return "", fmt.Errorf("store: setup link: %w", err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO setup_links (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)`,
		hashSecret(secret), string(id), purpose, expires); err != nil {
		return "", fmt.Errorf("store: setup link: %w", err)
	}
	return secret, nil
}

// SetupLinkBySecret finds an unused, unexpired link of a user who is not
// disabled (ErrNotFound otherwise); consume marks it used. Consume with the
// user's row locked (UserByID forUpdate) so that a concurrent disable
// cannot interleave.
func SetupLinkBySecret(ctx context.Context, db DBTX, secret string, now time.Time, consume bool) (SetupLink, error) {
	q := `SELECT l.user_id::text, l.purpose, l.expires_at FROM setup_links l JOIN users u ON u.id = l.user_id
		WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > $2 AND u.disabled_at IS NULL`
	if consume {
		q = `UPDATE setup_links l SET used_at = $2 FROM users u
			WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > $2 AND u.id = l.user_id AND u.disabled_at IS NULL
			RETURNING l.user_id::text, l.purpose, l.expires_at`
	}
	var l SetupLink
	var uid string
	err := db.QueryRow(ctx, q, hashSecret(secret), now).Scan(&uid, &l.Purpose, &l.ExpiresAt)
	l.UserID = ids.UserID(uid)
	return l, notFound(err)
}

// LockUser locks user id's row for the rest of tx (e.g. to serialise one
// provider's scheduling, so two requests cannot both pass the overlap
// check).
func LockUser(ctx context.Context, tx DBTX, id ids.UserID) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, string(id)); err != nil {
		return fmt.Errorf("store: lock user: %w", err)
	}
	return nil
}
