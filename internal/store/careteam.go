package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/phi"
)

// The roles an invite admits (visit_invites.role, participants.role). A
// guest provider is a staff account (VisitStaff), not an invitee.
const (
	InviteePatient     = "patient"
	InviteeCaregiver   = "caregiver"
	InviteeInterpreter = "interpreter"
)

// MaxPeople is how many people a visit holds at once: providers, guest
// providers and invitees (the recorder is not a person).
const MaxPeople = 8

// ValidInviteeRole reports whether r is a role an invite may admit.
func ValidInviteeRole(r string) bool {
	return r == InviteePatient || r == InviteeCaregiver || r == InviteeInterpreter
}

// NewInvite is an invite to make: the visit, the role it admits, and the
// invitee's name and email when the provider gave them (PHI, sealed).
type NewInvite struct {
	Visit       ids.VisitID
	Role        string
	Name, Email string
	Lang        string // the catalogue code (en, es); empty: English
}

// sealInvitee seals n's name and email for invite row id (nil when empty).
func sealInvitee(ctx context.Context, db DBTX, id string, n NewInvite) (name, email []byte, err error) {
	c := cipherOf(db)
	if n.Name != "" {
		if name, err = c.SealString(ctx, phi.InviteeName, id, n.Name); err != nil {
			return nil, nil, fmt.Errorf("store: invite: %w", err)
		}
	}
	if n.Email != "" {
		if email, err = c.SealString(ctx, phi.InviteeEmail, id, n.Email); err != nil {
			return nil, nil, fmt.Errorf("store: invite: %w", err)
		}
	}
	return name, email, nil
}

// Invitee is one invite of a visit as its providers see it, with the
// participant who used it (if any).
type Invitee struct {
	InviteID    string            `json:"invite_id"`
	Role        string            `json:"role"`
	Name        string            `json:"name,omitempty"`
	Email       string            `json:"email,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UsedAt      *time.Time        `json:"used_at,omitempty"`
	RevokedAt   *time.Time        `json:"revoked_at,omitempty"`
	Participant ids.ParticipantID `json:"participant_id,omitempty"`
}

// InviteesOf lists a visit's invites, oldest first, with their invitees'
// names and emails opened.
func InviteesOf(ctx context.Context, db DBTX, visit ids.VisitID) ([]Invitee, error) {
	rows, err := db.Query(ctx, `SELECT i.id::text, i.role, i.invitee_name_ct, i.invitee_email_ct, i.created_at, i.used_at, i.revoked_at,
			COALESCE((SELECT p.id::text FROM participants p WHERE p.invite_id = i.id LIMIT 1), '')
		FROM visit_invites i WHERE i.visit_id = $1 ORDER BY i.created_at, i.id`, string(visit))
	if err != nil {
		return nil, fmt.Errorf("store: invitees: %w", err)
	}
	c := cipherOf(db)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invitee, error) {
		var iv Invitee
		var name, email []byte
		var pid string
		if err := r.Scan(&iv.InviteID, &iv.Role, &name, &email, &iv.CreatedAt, &iv.UsedAt, &iv.RevokedAt, &pid); err != nil {
			return iv, err
		}
		iv.Participant = ids.ParticipantID(pid)
		var err error
		if iv.Name, err = c.Read(ctx, phi.InviteeName, iv.InviteID, name, nil); err != nil {
			return iv, err
		}
		iv.Email, err = c.Read(ctx, phi.InviteeEmail, iv.InviteID, email, nil)
		return iv, err
	})
}

// RevokeInvite revokes one invite of visit and removes the participant who
// used it, if they are still waiting or in the call, ending their sessions
// (the media nodes close their media: internal/revocation). False when
// visit has no such invite.
func RevokeInvite(ctx context.Context, db DBTX, visit ids.VisitID, invite string, now time.Time) (bool, error) {
	if !ids.Valid(invite) {
		return false, nil
	}
	tag, err := db.Exec(ctx, `UPDATE visit_invites SET revoked_at = COALESCE(revoked_at, $3) WHERE visit_id = $1 AND id = $2`,
		string(visit), invite, now)
	if err != nil {
		return false, fmt.Errorf("store: revoke invite: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	// Their sessions end with their place, as a removal from the waiting
	// room ends them (visits.Move).
	_, err = db.Exec(ctx, `WITH gone AS (
			UPDATE participants SET state = 'removed', left_at = COALESCE(left_at, $3)
			WHERE visit_id = $1 AND invite_id = $2 AND state IN ('waiting', 'admitted') RETURNING id)
		UPDATE sessions SET revoked_at = $3, revoke_reason = 'removed'
		WHERE participant_id IN (SELECT id FROM gone) AND revoked_at IS NULL`, string(visit), invite, now)
	if err != nil {
		return false, fmt.Errorf("store: revoke invite: %w", err)
	}
	return true, nil
}

// PeopleIn counts the people waiting or admitted in visit (the recorder is
// not counted), for the MaxPeople limit.
func PeopleIn(ctx context.Context, db DBTX, visit ids.VisitID) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM participants WHERE visit_id = $1 AND role <> 'recorder'
		AND state IN ('waiting', 'admitted')`, string(visit)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: people in visit: %w", err)
	}
	return n, nil
}

// AddVisitStaff makes user a guest provider of visit (idempotent).
func AddVisitStaff(ctx context.Context, db DBTX, visit ids.VisitID, user, by ids.UserID, now time.Time) error {
	_, err := db.Exec(ctx, `INSERT INTO visit_staff (visit_id, user_id, added_by, added_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, string(visit), string(user), string(by), now)
	if err != nil {
		return fmt.Errorf("store: add guest provider: %w", err)
	}
	return nil
}

// VisitStaff lists visit's guest providers.
func VisitStaff(ctx context.Context, db DBTX, visit ids.VisitID) ([]ids.UserID, error) {
	rows, err := db.Query(ctx, `SELECT user_id::text FROM visit_staff WHERE visit_id = $1 ORDER BY added_at, user_id`, string(visit))
	if err != nil {
		return nil, fmt.Errorf("store: guest providers: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ids.UserID, error) {
		var u string
		err := r.Scan(&u)
		return ids.UserID(u), err
	})
}

// RosterEntry is one person admitted to a visit, as the call page names
// their tile.
type RosterEntry struct {
	ID   ids.ParticipantID `json:"id"`
	Role string            `json:"role"`
	// Guest: a provider who is not the visit's own (visit_staff).
	Guest bool   `json:"guest,omitempty"`
	Name  string `json:"name,omitempty"`
}

// RosterOf lists the people admitted to visit: providers with their staff
// names, invitees with the name their invite gave (PHI, opened here).
func RosterOf(ctx context.Context, db DBTX, visit ids.VisitID) ([]RosterEntry, error) {
	rows, err := db.Query(ctx, `SELECT p.id::text, p.role, COALESCE(u.name, ''),
			p.user_id IS NOT NULL AND p.user_id IS DISTINCT FROM v.provider_id, COALESCE(i.id::text, ''), i.invitee_name_ct
		FROM participants p JOIN visits v ON v.id = p.visit_id
		LEFT JOIN users u ON u.id = p.user_id LEFT JOIN visit_invites i ON i.id = p.invite_id
		WHERE p.visit_id = $1 AND p.role <> 'recorder' AND p.state = 'admitted' ORDER BY p.admitted_at NULLS FIRST, p.id`, string(visit))
	if err != nil {
		return nil, fmt.Errorf("store: roster: %w", err)
	}
	c := cipherOf(db)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RosterEntry, error) {
		var e RosterEntry
		var inv string
		var sealed []byte
		if err := r.Scan(&e.ID, &e.Role, &e.Name, &e.Guest, &inv, &sealed); err != nil {
			return e, err
		}
		if sealed != nil {
			name, err := c.OpenString(ctx, phi.InviteeName, inv, sealed)
			if err != nil {
				return e, err
			}
			e.Name = name
		}
		return e, nil
	})
}
