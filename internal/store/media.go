package store

import (
	"context"
	"fmt"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
)

// SetMediaState records participant id's media state as its media node saw
// it at `at`, unless a later report is stored already, and queues a visit
// change notice in the same statement. It reports whether the row changed
// (false for an unknown participant, the recorder, or a stale report).
func SetMediaState(ctx context.Context, db DBTX, visit ids.VisitID, id ids.ParticipantID, state string, at time.Time) (bool, error) {
	if !ids.Valid(string(visit)) || !ids.Valid(string(id)) {
		return false, nil
	}
	tag, err := db.Exec(ctx, `WITH u AS (
			UPDATE participants SET media_state = $3, media_state_at = $4,
				media_failed_at = CASE WHEN $3 = 'failed' THEN $4 ELSE media_failed_at END
			WHERE visit_id = $1 AND id = $2 AND role <> 'recorder'
			  AND (media_state_at IS NULL OR media_state_at <= $4)
			RETURNING visit_id::text)
		SELECT pg_notify($5, u.visit_id) FROM u`, string(visit), string(id), state, at, VisitChannel)
	if err != nil {
		return false, fmt.Errorf("store: media state: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}
