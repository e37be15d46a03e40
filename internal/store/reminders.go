package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
)

// Visit reminders (migration 0020; internal/reminders has the rules).

// ClaimDueReminder locks one visit whose reminder at off is due at now and
// returns it with its current invite: a scheduled visit starting after
// now and at most off from now, whose live invite (unused, unrevoked,
// unlocked) was made before the reminder's time, with no reminder sent at
// off or nearer the start. Visits another transaction holds are skipped.
// ErrNotFound: none is due.
func ClaimDueReminder(ctx context.Context, tx DBTX, off time.Duration, now time.Time) (ids.VisitID, string, error) {
	var visit, invite string
	err := tx.QueryRow(ctx, `SELECT v.id::text, i.id::text FROM visits v
		JOIN visit_invites i ON i.visit_id = v.id AND i.revoked_at IS NULL AND i.used_at IS NULL AND i.locked_at IS NULL
		WHERE v.status = 'scheduled' AND v.patient_id IS NOT NULL AND v.scheduled_start > $2
		AND v.scheduled_start - make_interval(secs => $1) <= $2
		AND i.created_at < v.scheduled_start - make_interval(secs => $1)
		AND NOT EXISTS (SELECT 1 FROM visit_reminders r WHERE r.visit_id = v.id AND r.offset_seconds <= $1)
		ORDER BY v.scheduled_start, v.id LIMIT 1 FOR UPDATE OF v SKIP LOCKED`, int(off/time.Second), now).Scan(&visit, &invite)
	return ids.VisitID(visit), invite, notFound(err)
}

// RecordReminder records that visit's reminder at off went (or, with
// neither channel, was skipped) with invite. A reminder already recorded
// is a conflict (ErrReminderSent): the caller's transaction rolls back.
func RecordReminder(ctx context.Context, tx DBTX, visit ids.VisitID, off time.Duration, now time.Time, invite string, email, sms bool) error {
	tag, err := tx.Exec(ctx, `INSERT INTO visit_reminders (visit_id, offset_seconds, sent_at, invite_id, email, sms)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, string(visit), int(off/time.Second), now, invite, email, sms)
	if err != nil {
		return fmt.Errorf("store: reminder: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrReminderSent
	}
	return nil
}

// ErrReminderSent: the reminder was already recorded.
var ErrReminderSent = errors.New("store: reminder already sent")
