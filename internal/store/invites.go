package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// Invite is a visit's one-time link (its secret is never stored).
type Invite struct {
	ID          string
	VisitID     ids.VisitID
	Role        string // InviteePatient, InviteeCaregiver or InviteeInterpreter
	RevokedAt   *time.Time
	UsedAt      *time.Time
	DOBFailures int
	LockedAt    *time.Time
	// Lang is the code of the message catalogue the invite speaks (en, es;
	// internal/i18n): the provider's choice for the email and the pages.
	Lang string
}

// CreateInvite is CreateLangInvite in English.
func CreateInvite(ctx context.Context, db DBTX, visit ids.VisitID, now time.Time) (Invite, string, error) {
	return CreateLangInvite(ctx, db, visit, now, "en")
}

// CreateLangInvite revokes the visit's earlier patient invites and makes a
// new one in language lang (a catalogue code the caller checked),
// returning its secret (256 bits, base64url).
func CreateLangInvite(ctx context.Context, db DBTX, visit ids.VisitID, now time.Time, lang string) (Invite, string, error) {
	return CreateRoleInvite(ctx, db, NewInvite{Visit: visit, Role: InviteePatient, Lang: lang}, now)
}

// CreateRoleInvite makes an invite for n's role, in n's language (English
// when empty), and returns its secret (256 bits, base64url). A patient's
// invite revokes the patient's earlier ones (the link is re-issued); a
// caregiver's or interpreter's stands beside the others, each revoked on
// its own (RevokeInvite). The invitee's name and email are sealed
// (phi.InviteeName, phi.InviteeEmail).
func CreateRoleInvite(ctx context.Context, db DBTX, n NewInvite, now time.Time) (Invite, string, error) {
	if !ValidInviteeRole(n.Role) {
		return Invite{}, "", fmt.Errorf("store: invite: unknown role %q", n.Role)
	}
	if n.Lang == "" {
		n.Lang = "en"
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Invite{}, "", fmt.Errorf("store: invite: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	if n.Role == InviteePatient {
		if _, err := db.Exec(ctx, `UPDATE visit_invites SET revoked_at = $2 WHERE visit_id = $1 AND role = 'patient' AND revoked_at IS NULL`,
			string(n.Visit), now); err != nil {
			return Invite{}, "", fmt.Errorf("store: invite: %w", err)
		}
	}
	inv := Invite{ID: uuid.NewString(), VisitID: n.Visit, Role: n.Role, Lang: n.Lang}
	name, email, err := sealInvitee(ctx, db, inv.ID, n)
	if err != nil {
		return Invite{}, "", err
	}
	if _, err := db.Exec(ctx, `INSERT INTO visit_invites (id, secret_hash, visit_id, created_at, role, invitee_name_ct, invitee_email_ct, lang)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		inv.ID, hashSecret(secret), string(n.Visit), now, n.Role, name, email, n.Lang); err != nil {
		return Invite{}, "", fmt.Errorf("store: invite: %w", err)
	}
	return inv, secret, nil
}

// InviteLangOf is the language of the invite a patient participant came
// in by ("" for a participant without one: staff, or a demo).
func InviteLangOf(ctx context.Context, db DBTX, p ids.ParticipantID) (string, error) {
	var lang string
	err := db.QueryRow(ctx, `SELECT i.lang FROM participants p JOIN visit_invites i ON i.id = p.invite_id
		WHERE p.id = $1`, string(p)).Scan(&lang)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: invite language: %w", err)
	}
	return lang, nil
}

// RevokeInvites revokes every live invite of a visit.
func RevokeInvites(ctx context.Context, db DBTX, visit ids.VisitID, now time.Time) (int, error) {
	tag, err := db.Exec(ctx, `UPDATE visit_invites SET revoked_at = $2 WHERE visit_id = $1 AND revoked_at IS NULL`, string(visit), now)
	if err != nil {
		return 0, fmt.Errorf("store: revoke invites: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// InviteBySecret finds an invite by its secret, locking the row.
func InviteBySecret(ctx context.Context, db DBTX, secret string) (Invite, error) {
	return inviteBySecret(ctx, db, secret, " FOR UPDATE")
}

// PeekInvite finds an invite by its secret without locking it, for checks
// that change nothing.
func PeekInvite(ctx context.Context, db DBTX, secret string) (Invite, error) {
	return inviteBySecret(ctx, db, secret, "")
}

func inviteBySecret(ctx context.Context, db DBTX, secret, lock string) (Invite, error) {
	var inv Invite
	var vid string
	err := db.QueryRow(ctx, `SELECT id::text, visit_id::text, role, revoked_at, used_at, dob_failures, locked_at, lang
		FROM visit_invites WHERE secret_hash = $1`+lock, hashSecret(secret)).
		Scan(&inv.ID, &vid, &inv.Role, &inv.RevokedAt, &inv.UsedAt, &inv.DOBFailures, &inv.LockedAt, &inv.Lang)
	inv.VisitID = ids.VisitID(vid)
	return inv, notFound(err)
}

// InviteDOBFailure counts a wrong date of birth, locking at lockAt.
func InviteDOBFailure(ctx context.Context, db DBTX, id string, now time.Time, lockAt int) (locked bool, err error) {
	err = db.QueryRow(ctx, `UPDATE visit_invites SET dob_failures = dob_failures + 1,
		locked_at = CASE WHEN dob_failures + 1 >= $3 THEN COALESCE(locked_at, $2) ELSE locked_at END
		WHERE id = $1 RETURNING locked_at IS NOT NULL`, id, now, lockAt).Scan(&locked)
	return locked, err
}

// UseInvite marks an invite used (bound to the first browser).
func UseInvite(ctx context.Context, db DBTX, id string, now time.Time) error {
	_, err := db.Exec(ctx, `UPDATE visit_invites SET used_at = $2 WHERE id = $1 AND used_at IS NULL`, id, now)
	return err
}

// ReturnToWaiting puts a patient who left visit v back in its waiting
// room; false when they had not left (still waiting or admitted).
func ReturnToWaiting(ctx context.Context, db DBTX, v ids.VisitID, p ids.ParticipantID, now time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE participants SET state = 'waiting', waiting_at = $3, left_at = NULL
		WHERE visit_id = $1 AND id = $2 AND state = 'left'`, string(v), string(p), now)
	if err != nil {
		return false, fmt.Errorf("store: return to waiting: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// InviteLang is the language of invite id ("en" when there is none: a
// visit without an invite yet).
func InviteLang(ctx context.Context, db DBTX, id string) (string, error) {
	if id == "" {
		return "en", nil
	}
	var lang string
	err := db.QueryRow(ctx, `SELECT lang FROM visit_invites WHERE id::text = $1`, id).Scan(&lang)
	if errors.Is(err, pgx.ErrNoRows) {
		return "en", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: invite language: %w", err)
	}
	return lang, nil
}
