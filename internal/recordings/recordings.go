// Package recordings holds the rules of a visit's recording as the clinic
// sees them: the provider asks, the patient consents (or declines, or
// withdraws), the provider switches recording on only under a consent in
// force — of every invitee present: patient, caregiver, interpreter; one
// admitted later pauses it until they answer — and off at will; and who may reach a stored recording (an admin,
// the visit's provider, or a provider with a live break-glass grant). Each
// change commits with its audit entry (store.DB.Change). The recorder and
// the encrypted storage are the top-level recording package's.
package recordings

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Audit actions of consent and the switch.
const (
	ActionRequest   = "recording.request"
	ActionConsent   = "recording.consent"
	ActionDecline   = "recording.decline"
	ActionWithdraw  = "recording.withdraw"
	ActionStartCmd  = "recording.start_command"
	ActionStopCmd   = "recording.stop_command"
	ActionLegalHold = "recording.legal_hold"
)

// Stop reasons written on the recording.
const (
	StopDeclined  = "consent_declined"
	StopWithdrawn = "consent_withdrawn"
	StopCommand   = "stopped"
)

var (
	ErrNoRequest  = errors.New("recordings: recording not requested")
	ErrNoConsent  = errors.New("recordings: no consent in force")
	ErrNotGiven   = errors.New("recordings: no consent to withdraw")
	ErrVisitEnded = errors.New("recordings: visit ended")
	// ErrAuditDown: the audit entry could not be written, so the change or
	// the access is refused.
	ErrAuditDown = errors.New("recordings: audit log unavailable")
	// ErrNoAccess: the viewer may not reach this recording.
	ErrNoAccess = errors.New("recordings: not a participant")
)

// Service applies the recording rules. It holds no state of its own.
type Service struct{ store.Env }

// New returns a Service on env.
func New(env store.Env) *Service { return &Service{env} }

// Change is a change to one visit's recording by the request's principal.
type Change struct {
	Visit ids.VisitID
	// Actor is the audit actor ID (the user, or the patient participant).
	Actor string
	// Participant is the patient answering (Answer only).
	Participant ids.ParticipantID
	// Event carries the audit entry's actor fields.
	Event audit.Event
}

// Request asks the patient to consent to recording.
func (s *Service) Request(ctx context.Context, c Change) (State, error) {
	return s.change(ctx, c, ActionRequest, func(tx pgx.Tx, now time.Time) (string, error) {
		if err := visitOpen(ctx, tx, c.Visit); err != nil {
			return "", err
		}
		return "", store.RequestRecording(ctx, tx, c.Visit, c.Actor, now)
	})
}

// Answer records the patient's answer to a request. A decline also ends
// any consent in force and any recording.
func (s *Service) Answer(ctx context.Context, c Change, accept bool) (State, error) {
	return s.change(ctx, c, ActionConsent, func(tx pgx.Tx, now time.Time) (string, error) {
		ctl, ok, err := store.RecordingControlOf(ctx, tx, c.Visit)
		if err != nil {
			return "", err
		}
		if !ok || ctl.RequestedAt == nil {
			return "", ErrNoRequest
		}
		if !accept {
			if _, err := store.WithdrawConsent(ctx, tx, c.Visit, now); err != nil {
				return "", err
			}
			if _, err := store.StopRecording(ctx, tx, c.Visit, StopDeclined, now); err != nil {
				return "", err
			}
		}
		if _, err := store.RecordConsent(ctx, tx, c.Visit, c.Participant, accept, now); err != nil {
			return "", err
		}
		if !accept {
			return ActionDecline, nil
		}
		return "", resume(ctx, tx, c, ctl, now)
	})
}

// Withdraw ends the consent in force and any recording.
func (s *Service) Withdraw(ctx context.Context, c Change) (State, error) {
	return s.change(ctx, c, ActionWithdraw, func(tx pgx.Tx, now time.Time) (string, error) {
		n, err := store.WithdrawConsent(ctx, tx, c.Visit, now)
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", ErrNotGiven
		}
		_, err = store.StopRecording(ctx, tx, c.Visit, StopWithdrawn, now)
		return "", err
	})
}

// Start switches recording on, only in an open visit under a consent in
// force.
func (s *Service) Start(ctx context.Context, c Change) (State, error) {
	return s.change(ctx, c, ActionStartCmd, func(tx pgx.Tx, now time.Time) (string, error) {
		if err := visitOpen(ctx, tx, c.Visit); err != nil {
			return "", err
		}
		con, has, err := store.LatestConsent(ctx, tx, c.Visit)
		if err != nil {
			return "", err
		}
		if !has || !con.Active() {
			return "", ErrNoConsent
		}
		// Every invitee present (patient, caregiver, interpreter) consents.
		if missing, err := store.ConsentsMissing(ctx, tx, c.Visit); err != nil || missing > 0 {
			return "", cmp.Or(err, ErrNoConsent)
		}
		_, err = store.StartRecording(ctx, tx, c.Visit, c.Actor, now)
		return "", err
	})
}

// resume switches back on a recording paused for a newcomer's consent
// (store.PauseRecordingForConsent) once every invitee present consents.
func resume(ctx context.Context, tx pgx.Tx, c Change, ctl store.RecordingControl, now time.Time) error {
	if ctl.Active || ctl.StopReason != store.StopAwaitingConsent {
		return nil
	}
	if missing, err := store.ConsentsMissing(ctx, tx, c.Visit); err != nil || missing > 0 {
		return err
	}
	_, err := store.StartRecording(ctx, tx, c.Visit, c.Actor, now)
	return err
}

// Stop switches recording off.
func (s *Service) Stop(ctx context.Context, c Change) (State, error) {
	return s.change(ctx, c, ActionStopCmd, func(tx pgx.Tx, now time.Time) (string, error) {
		_, err := store.StopRecording(ctx, tx, c.Visit, StopCommand, now)
		return "", err
	})
}

// change runs fn on the locked visit with its audit entry (action, or the
// action fn returns) in one transaction, and returns the new state.
func (s *Service) change(ctx context.Context, c Change, action string, fn func(tx pgx.Tx, now time.Time) (string, error)) (State, error) {
	now := s.Now()
	ev := c.Event
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome = action, "recording_consent", string(c.Visit), audit.Success
	var st State
	err := s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		// Serialise changes of one visit's recording.
		if err := store.LockVisit(ctx, tx, c.Visit); err != nil {
			return err
		}
		act, err := fn(tx, now)
		if err != nil {
			return err
		}
		if act != "" {
			ev.Action = act
		}
		st, err = stateOf(ctx, tx, c.Visit, now)
		return err
	})
	if errors.Is(err, store.ErrAudit) {
		return State{}, ErrAuditDown
	}
	return st, err
}

func visitOpen(ctx context.Context, tx pgx.Tx, v ids.VisitID) error {
	vis, err := store.VisitByID(ctx, tx, v)
	if err != nil {
		return err
	}
	if store.Closed(vis.Status) {
		return ErrVisitEnded
	}
	return nil
}

// LegalHold sets or lifts a recording's legal hold (a held recording is
// never deleted by retention).
func (s *Service) LegalHold(ctx context.Context, id string, hold bool, actor audit.Event) (store.Recording, error) {
	var rec store.Recording
	ev := actor
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome = ActionLegalHold, "recording", id, audit.Success
	ev.Reason = fmt.Sprintf("hold=%t", hold)
	err := s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		if err := store.SetLegalHold(ctx, tx, id, hold); err != nil {
			return err
		}
		var err error
		rec, err = store.RecordingByID(ctx, tx, id)
		ev.VisitID, ev.PatientID = string(rec.VisitID), rec.PatientID
		return err
	})
	if errors.Is(err, store.ErrAudit) {
		return store.Recording{}, ErrAuditDown
	}
	return rec, err
}
