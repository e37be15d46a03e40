// Package visits holds the rules of a visit from booking to its end:
// scheduling, rescheduling and the provider's schedule list
// (schedule.go), which media node hosts its call and who may join it
// (placement.go, join.go), the waiting room's moves (waiting.go), and its
// lifecycle — the provider's "End visit", cancel and no-show, and the sweep
// that expires visits nobody ended.
//
// Ending a visit is a revocation: in the one transaction that ends it, its
// invites, its patients' sessions and its recording switch end too. On
// commit, every media node ends the visit's calls (internal/revocation: the
// visits trigger notifies them), the recorder holding the recording sees the
// switch off and finishes it (recording/), and every page watching the
// visit hears of it (the visit change notice).
package visits

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Stop reasons a visit's ending writes on its recording.
const StopVisitEnded = "visit_ended"

var (
	// ErrNotClosing means status is not one a visit can end with.
	ErrNotClosing = errors.New("visits: not a closing status")
	// ErrVisitClosed: the visit has ended.
	ErrVisitClosed = errors.New("visits: visit ended")
	// ErrNotAMove means a state is not one a provider moves a patient to.
	ErrNotAMove = errors.New("visits: not a participant move")
)

// Close ends visit v with status (completed, cancelled or no_show) in tx:
// status and timestamp, invites revoked, everyone still waiting or admitted
// marked left, the visit's patient sessions revoked, the recording switched
// off, and a change notice queued. The caller has locked the visit and
// checked that it may end this way, and appends the audit entry in tx.
func Close(ctx context.Context, tx pgx.Tx, v ids.VisitID, status string, now time.Time) error {
	if !store.Closed(status) {
		return ErrNotClosing
	}
	if err := store.SetVisitStatus(ctx, tx, v, status, now); err != nil {
		return err
	}
	if _, err := store.RevokeInvites(ctx, tx, v, now); err != nil {
		return err
	}
	if err := store.LeaveAll(ctx, tx, v, now); err != nil {
		return err
	}
	if _, err := store.RevokeVisitSessions(ctx, tx, v, now, "visit "+status); err != nil {
		return err
	}
	if _, err := store.StopRecording(ctx, tx, v, StopVisitEnded, now); err != nil {
		return err
	}
	return store.NotifyVisit(ctx, tx, v)
}

// Expiry: a visit nobody ended is ended this long after its scheduled end,
// or, unscheduled, this long after it was created.
const (
	ExpireAfterEnd     = 2 * time.Hour
	ExpireUnscheduled  = 12 * time.Hour
	ActionVisitExpire  = "visit.expire"
	expireBatch        = 100
	systemActor        = "system:visit-expiry"
	expiredInProgress  = store.StatusCompleted
	expiredNeverBegun  = store.StatusNoShow
	expireReasonPrefix = "expired"
)

// ExpireDue ends the visits due to expire at now, each in its own
// transaction with its audit entry, and returns how many it ended. A visit
// in progress is completed; one that never began is a no-show.
func ExpireDue(ctx context.Context, db *store.DB, now time.Time) (int, error) {
	due, err := store.VisitsToExpire(ctx, db, now.Add(-ExpireAfterEnd), now.Add(-ExpireUnscheduled), expireBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range due {
		ended, err := expireOne(ctx, db, v, now)
		if err != nil {
			return n, fmt.Errorf("visits: expire %s: %w", v, err)
		}
		if ended {
			n++
		}
	}
	return n, nil
}

func expireOne(ctx context.Context, db *store.DB, id ids.VisitID, now time.Time) (bool, error) {
	ev := audit.Event{ActorID: systemActor, ActorRole: "system", Action: ActionVisitExpire, ResourceType: "visit",
		ResourceID: string(id), VisitID: string(id), Outcome: audit.Success}
	err := db.Change(ctx, &ev, func(tx pgx.Tx) error {
		v, err := store.ScheduledVisitByID(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if store.Closed(v.Status) {
			return errNothingToDo // ended meanwhile
		}
		status := expiredNeverBegun
		if v.Status == store.StatusInProgress {
			status = expiredInProgress
		}
		ev.PatientID, ev.Reason = v.PatientID, expireReasonPrefix+" as "+status
		return Close(ctx, tx, id, status, now)
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errNothingToDo):
		return false, nil // gone or ended meanwhile
	case err != nil:
		return false, err
	}
	return true, nil
}

// errNothingToDo rolls back a change that found nothing to change.
var errNothingToDo = errors.New("visits: nothing to do")
