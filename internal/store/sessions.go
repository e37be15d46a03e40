package store

import (
	"context"
	"fmt"
	"time"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
)

// Session kinds.
const (
	SessionStaff   = "staff"
	SessionPatient = "patient"
)

// Session is a signed-in browser: staff (UserID) or an admitted patient
// (VisitID, ParticipantID).
type Session struct {
	IDHash        []byte
	Kind          string
	UserID        ids.UserID
	UserRole      string // staff only, joined from users
	UserDisabled  bool
	VisitID       ids.VisitID
	ParticipantID ids.ParticipantID
	// ParticipantRole is an invitee's role (patient, caregiver or
	// interpreter), joined from participants; patient sessions only.
	ParticipantRole string
	CreatedAt       time.Time
	LastSeenAt      time.Time
	RevokedAt       *time.Time
}

// NewSession describes a session to create.
type NewSession struct {
	IDHash        []byte
	Kind          string
	UserID        ids.UserID
	VisitID       ids.VisitID
	ParticipantID ids.ParticipantID
	Now           time.Time
	IP, UserAgent string
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateSession stores a session (hash only).
func CreateSession(ctx context.Context, db DBTX, s NewSession) error {
	_, err := db.Exec(ctx, `INSERT INTO sessions (id_hash, kind, user_id, visit_id, participant_id, created_at, last_seen_at, ip, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)`,
		s.IDHash, s.Kind, nullable(string(s.UserID)), nullable(string(s.VisitID)), nullable(string(s.ParticipantID)),
		s.Now, audit.Truncate(s.IP, 64), audit.Truncate(s.UserAgent, 512))
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// SessionByHash finds a session, revoked or not; callers check.
func SessionByHash(ctx context.Context, db DBTX, hash []byte) (Session, error) {
	var s Session
	var uid, role, vid, pid, prole *string
	var disabled *time.Time
	err := db.QueryRow(ctx, `SELECT s.id_hash, s.kind, s.user_id::text, u.role, u.disabled_at, s.visit_id::text, s.participant_id::text,
			p.role, s.created_at, s.last_seen_at, s.revoked_at
		FROM sessions s LEFT JOIN users u ON u.id = s.user_id
		LEFT JOIN participants p ON p.id = s.participant_id AND s.kind = 'patient'
		WHERE s.id_hash = $1`, hash).
		Scan(&s.IDHash, &s.Kind, &uid, &role, &disabled, &vid, &pid, &prole, &s.CreatedAt, &s.LastSeenAt, &s.RevokedAt)
	if err != nil {
		return Session{}, notFound(err)
	}
	if uid != nil {
		s.UserID = ids.UserID(*uid)
	}
	if role != nil {
		s.UserRole = *role
	}
	s.UserDisabled = disabled != nil
	if vid != nil {
		s.VisitID = ids.VisitID(*vid)
	}
	if pid != nil {
		s.ParticipantID = ids.ParticipantID(*pid)
	}
	if prole != nil {
		s.ParticipantRole = *prole
	}
	return s, nil
}

// TouchSession records activity.
func TouchSession(ctx context.Context, db DBTX, hash []byte, now time.Time) error {
	_, err := db.Exec(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL AND last_seen_at < $2`, hash, now)
	return err
}

// RevokeSession ends one session; false when it was already over.
func RevokeSession(ctx context.Context, db DBTX, hash []byte, now time.Time, reason string) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE id_hash = $1 AND revoked_at IS NULL`, hash, now, reason)
	if err != nil {
		return false, fmt.Errorf("store: revoke session: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RevokeUserSessions ends every live session of a user and returns how many.
func RevokeUserSessions(ctx context.Context, db DBTX, id ids.UserID, now time.Time, reason string) (int, error) {
	tag, err := db.Exec(ctx, `UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL`,
		string(id), now, reason)
	if err != nil {
		return 0, fmt.Errorf("store: revoke sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
