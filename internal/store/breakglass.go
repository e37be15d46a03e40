package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/phi"
)

// BreakGlass is an emergency access grant.
type BreakGlass struct {
	ID         string      `json:"id"`
	UserID     ids.UserID  `json:"user_id"`
	VisitID    ids.VisitID `json:"visit_id"`
	Reason     string      `json:"reason"`
	GrantedAt  time.Time   `json:"granted_at"`
	ExpiresAt  time.Time   `json:"expires_at"`
	ReviewedBy *string     `json:"reviewed_by,omitempty"`
	ReviewedAt *time.Time  `json:"reviewed_at,omitempty"`
}

// GrantBreakGlass records a grant.
func GrantBreakGlass(ctx context.Context, db DBTX, user ids.UserID, visit ids.VisitID, reason string, now time.Time, d time.Duration) (BreakGlass, error) {
	g := BreakGlass{ID: uuid.NewString(), UserID: user, VisitID: visit, Reason: reason, GrantedAt: now, ExpiresAt: now.Add(d)}
	sealed, err := cipherOf(db).SealString(ctx, phi.BreakGlassReason, g.ID, reason)
	if err != nil {
		return BreakGlass{}, fmt.Errorf("store: break-glass: %w", err)
	}
	_, err = db.Exec(ctx, `INSERT INTO break_glass (id, user_id, visit_id, reason_ct, granted_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		g.ID, string(user), string(visit), sealed, now, g.ExpiresAt)
	if err != nil {
		return BreakGlass{}, fmt.Errorf("store: break-glass: %w", err)
	}
	return g, nil
}

// ListBreakGlass returns grants, unreviewed first, newest first.
func ListBreakGlass(ctx context.Context, db DBTX, limit int) ([]BreakGlass, error) {
	rows, err := db.Query(ctx, `SELECT id::text, user_id::text, visit_id::text, reason_ct, reason, granted_at, expires_at, reviewed_by::text, reviewed_at
		FROM break_glass ORDER BY reviewed_at IS NOT NULL, granted_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list break-glass: %w", err)
	}
	c := cipherOf(db)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (BreakGlass, error) {
		var g BreakGlass
		var uid, vid string
		var sealed []byte
		var plain *string
		if err := r.Scan(&g.ID, &uid, &vid, &sealed, &plain, &g.GrantedAt, &g.ExpiresAt, &g.ReviewedBy, &g.ReviewedAt); err != nil {
			return g, err
		}
		g.UserID, g.VisitID = ids.UserID(uid), ids.VisitID(vid)
		var err error
		if g.Reason, err = c.Read(ctx, phi.BreakGlassReason, g.ID, sealed, plain); err != nil {
			return g, fmt.Errorf("store: break-glass %s: %w", g.ID, err)
		}
		return g, nil
	})
}

// UnreviewedBreakGlassUser locks an unreviewed grant and returns whom it
// was granted to.
func UnreviewedBreakGlassUser(ctx context.Context, db DBTX, id string) (ids.UserID, error) {
	if !ids.Valid(id) {
		return "", ErrNotFound
	}
	var user string
	err := db.QueryRow(ctx, `SELECT user_id::text FROM break_glass WHERE id = $1 AND reviewed_at IS NULL FOR UPDATE`, id).Scan(&user)
	return ids.UserID(user), notFound(err)
}

// ReviewBreakGlass marks a grant reviewed by admin (empty: by the operator
// on the server's command line).
func ReviewBreakGlass(ctx context.Context, db DBTX, id string, admin ids.UserID, now time.Time) error {
	if !ids.Valid(id) {
		return ErrNotFound
	}
	tag, err := db.Exec(ctx, `UPDATE break_glass SET reviewed_by = NULLIF($2, '')::uuid, reviewed_at = $3 WHERE id = $1 AND reviewed_at IS NULL`, id, string(admin), now)
	if err != nil {
		return fmt.Errorf("store: review break-glass: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
