package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Why a media grant (a join token in use) no longer holds. The strings are
// stable: media nodes turn them into close codes.
const (
	GrantVisitEnded   = "visit_ended"
	GrantRemoved      = "removed"
	GrantSessionEnded = "session_ended"
)

// SessionLimits are the session timeouts a grant's session must still meet.
type SessionLimits struct {
	StaffIdle, PatientIdle, Absolute time.Duration
}

// grantCheck is the one definition of "may this join token's holder still
// be in the call": the visit is open; a patient or provider is still
// admitted to it; a staff provider who is not the visit's own still holds
// an unexpired break-glass grant (a demo link's provider has no account:
// the visit check is what ends it) or is one of its guest providers
// (visit_staff); the session that minted the token (if any)
// is neither revoked, nor expired, nor its user disabled. It yields one row
// per token in $1 that fails, with the first reason that applies; a token
// unknown to the database fails as removed. The join (Burn) and the media
// nodes' re-check (internal/revocation) both use it.
const grantCheck = `
SELECT j.jti, CASE
    WHEN t.jti IS NULL THEN 'removed'
    WHEN v.id IS NULL OR v.status IN ('completed', 'cancelled', 'no_show') THEN 'visit_ended'
    WHEN t.role IN ('patient', 'caregiver', 'interpreter', 'provider') AND (p.id IS NULL OR p.state <> 'admitted') THEN 'removed'
    WHEN t.role = 'provider' AND p.user_id IS NOT NULL AND p.user_id IS DISTINCT FROM v.provider_id AND NOT EXISTS (
        SELECT 1 FROM break_glass b WHERE b.visit_id = v.id AND b.user_id = p.user_id AND b.expires_at > $2)
        AND NOT EXISTS (SELECT 1 FROM visit_staff g WHERE g.visit_id = v.id AND g.user_id = p.user_id)
        THEN 'removed'
    WHEN t.session_hash IS NOT NULL AND (
        s.id_hash IS NULL OR s.revoked_at IS NOT NULL OR u.disabled_at IS NOT NULL
        OR s.created_at <= $2::timestamptz - $5::interval
        OR s.last_seen_at <= $2::timestamptz - CASE WHEN s.kind = 'patient' THEN $4::interval ELSE $3::interval END)
        THEN 'session_ended'
    ELSE '' END AS why
FROM unnest($1::text[]) AS j (jti)
LEFT JOIN join_tokens t ON t.jti = j.jti
LEFT JOIN visits v ON v.id = t.visit_id
LEFT JOIN participants p ON p.id = t.participant_id AND p.visit_id = t.visit_id
LEFT JOIN sessions s ON s.id_hash = t.session_hash
LEFT JOIN users u ON u.id = s.user_id`

// RevokedGrants returns, for each join token ID in jtis whose holder may no
// longer be in the call, why not (GrantVisitEnded, GrantRemoved or
// GrantSessionEnded). Tokens that still hold are absent.
func RevokedGrants(ctx context.Context, db DBTX, jtis []string, lim SessionLimits, now time.Time) (map[string]string, error) {
	out := map[string]string{}
	if len(jtis) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, `SELECT jti, why FROM (`+grantCheck+`) g WHERE why <> ''`,
		jtis, now, lim.StaffIdle, lim.PatientIdle, lim.Absolute)
	if err != nil {
		return nil, fmt.Errorf("store: revoked grants: %w", err)
	}
	var jti, why string
	_, err = pgx.ForEachRow(rows, []any{&jti, &why}, func() error {
		out[jti] = why
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: revoked grants: %w", err)
	}
	return out, nil
}

// NewJoinToken is a minted join token to remember until it is burned.
type NewJoinToken struct {
	ID          string
	VisitID     string
	Participant string
	Role        string
	ExpiresAt   time.Time
	// SessionHash is the session that minted it (nil: none, e.g. a demo
	// link or a service participant).
	SessionHash []byte
}

// InsertJoinToken records a minted, unused join token.
func InsertJoinToken(ctx context.Context, db DBTX, t NewJoinToken) error {
	_, err := db.Exec(ctx, `INSERT INTO join_tokens (jti, visit_id, participant_id, role, expires_at, session_hash)
		VALUES ($1, $2, $3, $4, $5, $6)`, t.ID, t.VisitID, t.Participant, t.Role, t.ExpiresAt, t.SessionHash)
	if err != nil {
		return fmt.Errorf("store: join token: %w", err)
	}
	return nil
}

// BurnJoinToken marks a token used, inserting its row when it was minted
// elsewhere (the recorder mints its own). Only one Burn of a token wins:
// used is true when it was burned before.
func BurnJoinToken(ctx context.Context, db DBTX, t NewJoinToken) (used bool, err error) {
	tag, err := db.Exec(ctx, `INSERT INTO join_tokens (jti, visit_id, participant_id, role, expires_at, used_at)
		VALUES ($1, $2, $3, $4, $5, now())
		ON CONFLICT (jti) DO UPDATE SET used_at = now() WHERE join_tokens.used_at IS NULL`,
		t.ID, t.VisitID, t.Participant, t.Role, t.ExpiresAt)
	if err != nil {
		return false, fmt.Errorf("store: burn join token: %w", err)
	}
	return tag.RowsAffected() == 0, nil
}
