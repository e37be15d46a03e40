package visits

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Participant states the provider moves a patient to from the waiting
// room, and the states each may be reached from.
const (
	Admitted   = "admitted"
	TurnedAway = "turned_away"
	Removed    = "removed"
)

var movesFrom = map[string][]string{
	Admitted:   {"waiting"},
	TurnedAway: {"waiting"},
	Removed:    {"waiting", Admitted},
}

// WrongStateError: the patient is not in a state the move starts from.
type WrongStateError struct{ State string }

func (e *WrongStateError) Error() string { return "visits: participant is " + e.State }

// Move moves invitee participant p (patient, caregiver or interpreter) of locked visit v to state to (Admitted,
// TurnedAway or Removed) in tx. Admitting starts a visit that had not
// begun; any other move ends the patient's sessions, and with them their
// call on whichever media node hosts it (internal/revocation) once tx
// commits. The caller appends the audit entry and the change notice.
func Move(ctx context.Context, tx pgx.Tx, v store.ScheduledVisit, p ids.ParticipantID, to string, now time.Time) error {
	from, ok := movesFrom[to]
	if !ok {
		return ErrNotAMove
	}
	if store.Closed(v.Status) {
		return ErrVisitClosed
	}
	pt, err := store.ParticipantByID(ctx, tx, v.ID, p)
	if err != nil || !store.ValidInviteeRole(pt.Role) {
		return store.ErrNotFound
	}
	if !slices.Contains(from, pt.State) {
		return &WrongStateError{State: pt.State}
	}
	if err := store.SetParticipantState(ctx, tx, v.ID, p, to, now); err != nil {
		return err
	}
	if to != Admitted {
		return store.RevokeParticipantSessions(ctx, tx, p, now, to)
	}
	// Someone admitted while the visit is recorded who has not consented
	// pauses the recording until they answer.
	if _, err := store.PauseRecordingForConsent(ctx, tx, v.ID, p, now); err != nil {
		return err
	}
	if v.Status == store.StatusScheduled || v.Status == store.StatusWaiting {
		return store.SetVisitStatus(ctx, tx, v.ID, store.StatusInProgress, now)
	}
	return nil
}
