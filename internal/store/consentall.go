package store

import (
	"context"
	"fmt"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
)

// StopAwaitingConsent is the stop reason of a recording paused because
// someone joined who has not consented: nothing is recorded until every
// invitee present has (recordings.Service.Answer resumes it).
const StopAwaitingConsent = "awaiting_consent"

// inForce is a consent in force of participant p.id in visit $1.
const inForce = `EXISTS (SELECT 1 FROM consents c WHERE c.visit_id = $1 AND c.participant_id = p.id
	AND c.kind = 'recording' AND c.given_at IS NOT NULL AND c.withdrawn_at IS NULL)`

// ConsentsMissing counts the invitees (patient, caregiver, interpreter)
// admitted to visit without a recording consent in force: recording may
// run only while it is zero.
func ConsentsMissing(ctx context.Context, db DBTX, visit ids.VisitID) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM participants p WHERE p.visit_id = $1
		AND p.role IN ('patient', 'caregiver', 'interpreter') AND p.state = 'admitted' AND NOT `+inForce, string(visit)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: consents missing: %w", err)
	}
	return n, nil
}

// PauseRecordingForConsent pauses visit's recording when invitee p, just
// admitted, has no consent in force: the switch goes off with
// StopAwaitingConsent, so the recorder writes nothing of anyone until p
// answers. True when it paused.
func PauseRecordingForConsent(ctx context.Context, db DBTX, visit ids.VisitID, p ids.ParticipantID, now time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE recording_controls SET active = false, stopped_at = $3, stop_reason = $4, updated_at = $3
		WHERE visit_id = $1 AND active AND NOT EXISTS (SELECT 1 FROM participants p WHERE p.id = $2 AND `+inForce+`)`,
		string(visit), string(p), now, StopAwaitingConsent)
	if err != nil {
		return false, fmt.Errorf("store: pause recording: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// AnsweredSince reports whether participant answered visit's recording
// request at or after since.
func AnsweredSince(ctx context.Context, db DBTX, visit ids.VisitID, participant ids.ParticipantID, since time.Time) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM consents WHERE visit_id = $1 AND participant_id = $2
		AND kind = 'recording' AND COALESCE(given_at, declined_at) >= $3)`, string(visit), string(participant), since).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: answered: %w", err)
	}
	return ok, nil
}
