package visits

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/patients"
	"github.com/openvisit/openvisit/internal/store"
)

// Scheduling limits.
const (
	MinDuration = 5 * time.Minute
	MaxDuration = 4 * time.Hour
	// PastSlack: a visit may be scheduled to start a little in the past (a
	// provider filling in "now"), never more.
	PastSlack = 5 * time.Minute
	// MaxAhead: schedules reach at most this far ahead.
	MaxAhead = 366 * 24 * time.Hour
	// MaxReason bounds a visit's reason, in characters.
	MaxReason = 500
	// MaxListRange bounds the range a schedule list covers.
	MaxListRange = 62 * 24 * time.Hour
)

// Refusals of scheduling.
var (
	ErrBadDuration    = errors.New("visits: duration out of range")
	ErrInPast         = errors.New("visits: start in the past")
	ErrTooFarAhead    = errors.New("visits: start too far ahead")
	ErrReasonTooLong  = errors.New("visits: reason too long")
	ErrUnknownPatient = errors.New("visits: not one of the provider's patients")
	// ErrOverlap: the provider already has a visit at that time.
	ErrOverlap = errors.New("visits: overlaps another visit")
	// ErrNotScheduled: only a scheduled visit that has not started moves.
	ErrNotScheduled = errors.New("visits: not a scheduled visit")
	// ErrNotCancellable: only a visit that has not started is cancelled.
	ErrNotCancellable = errors.New("visits: visit started")
	// ErrNotNoShow: a visit is a no-show only after its start, if the
	// patient never arrived.
	ErrNotNoShow = errors.New("visits: not a no-show")
	// ErrBadRange: a schedule list's range is empty or over MaxListRange.
	ErrBadRange = errors.New("visits: bad range")
)

// Window is when a scheduled visit takes place.
type Window struct{ Start, End time.Time }

// NewWindow checks a visit starting at start and lasting d, scheduled at
// now: 5 to 240 minutes, not in the past (beyond PastSlack), at most
// MaxAhead away.
func NewWindow(start time.Time, d time.Duration, now time.Time) (Window, error) {
	switch {
	case d < MinDuration || d > MaxDuration:
		return Window{}, ErrBadDuration
	case start.Before(now.Add(-PastSlack)):
		return Window{}, ErrInPast
	case start.After(now.Add(MaxAhead)):
		return Window{}, ErrTooFarAhead
	}
	return Window{Start: start, End: start.Add(d)}, nil
}

// Scheduler creates visits on providers' schedules. It holds no state of
// its own.
type Scheduler struct {
	store.Env
	Place Placement
}

// StartNow creates an unscheduled visit of provider, starting now, placed
// on a media node; ev is its audit entry (actor and source), which names
// the new visit.
func (s *Scheduler) StartNow(ctx context.Context, provider ids.UserID, ev audit.Event) (ids.VisitID, error) {
	id := ids.NewVisitID()
	ev.ResourceID, ev.VisitID = string(id), string(id)
	err := s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		node, err := s.Place.New(ctx, tx)
		if err != nil {
			return err
		}
		if err := store.CreateVisit(ctx, tx, id, provider, node, nil, nil); err != nil {
			return err
		}
		return s.Place.Placed(ctx, tx, id, node)
	})
	return id, err
}

// List returns provider's visits in [from, to) (MaxListRange at most).
// The list shows patient names: one entry of base per patient on it (or
// base alone for an empty list), recorded before it is returned
// (patients.RecordShown).
func (s *Scheduler) List(ctx context.Context, provider ids.UserID, from, to time.Time, base audit.Event) ([]store.ScheduledVisit, error) {
	if !to.After(from) || to.Sub(from) > MaxListRange {
		return nil, ErrBadRange
	}
	list, err := store.ProviderSchedule(ctx, s.DB, provider, from, to)
	if err != nil {
		return nil, err
	}
	return patients.ShownList(ctx, s.DB.Audit(), base, list, func(v store.ScheduledVisit) string { return v.PatientID }, patients.NoneRecorded)
}

// Booking asks for a scheduled visit.
type Booking struct {
	Provider ids.UserID
	Patient  string
	Start    time.Time
	Duration time.Duration
	Reason   string
	// System: the booking comes from a machine client with a system scope
	// (an EHR through FHIR), which books for the whole clinic: the patient
	// need not be one of the provider's yet. A provider booking by hand
	// books only their own patients.
	System bool
	// Event carries the audit entry's actor fields.
	Event audit.Event
}

// Schedule books a visit of b.Provider with one of their patients. Its
// room exists from now on, closed to everyone until the rules open it.
func (s *Scheduler) Schedule(ctx context.Context, b Booking) (ids.VisitID, error) {
	w, err := NewWindow(b.Start, b.Duration, s.Now())
	if err != nil {
		return "", err
	}
	b.Reason = strings.TrimSpace(b.Reason)
	if utf8.RuneCountInString(b.Reason) > MaxReason {
		return "", ErrReasonTooLong
	}
	id := ids.NewVisitID()
	ev := b.Event
	ev.ResourceID, ev.VisitID, ev.PatientID = string(id), string(id), b.Patient
	err = s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		ok, err := store.PatientRelation(ctx, tx, b.Provider, b.Patient)
		if err != nil {
			return err
		}
		if !ok && b.System {
			ok, err = store.PatientExists(ctx, tx, b.Patient)
		}
		if err != nil {
			return err
		}
		if !ok {
			return ErrUnknownPatient
		}
		// Serialize this provider's scheduling so two requests cannot both
		// pass the overlap check.
		if err := store.LockUser(ctx, tx, b.Provider); err != nil {
			return err
		}
		if err := free(ctx, tx, b.Provider, w, ""); err != nil {
			return err
		}
		// A scheduled visit is placed again at its first join (by then the
		// least-loaded node may be another).
		node, err := s.Place.New(ctx, tx)
		if err != nil {
			return err
		}
		return store.ScheduleVisit(ctx, tx, id, b.Provider, b.Patient, node, w.Start, w.End, b.Reason)
	})
	return id, err
}

// Reschedule moves locked visit v to w in tx: only a scheduled visit that
// has not started moves, and never onto another of its provider's visits.
// The caller appends the audit entry and the change notice.
func Reschedule(ctx context.Context, tx pgx.Tx, v store.ScheduledVisit, w Window) error {
	if v.Status != store.StatusScheduled || v.ScheduledStart == nil {
		return ErrNotScheduled
	}
	if err := free(ctx, tx, v.ProviderID, w, v.ID); err != nil {
		return err
	}
	return store.Reschedule(ctx, tx, v.ID, w.Start, w.End)
}

// free refuses w when provider has another visit (but except) in it.
func free(ctx context.Context, tx pgx.Tx, provider ids.UserID, w Window, except ids.VisitID) error {
	clash, err := store.Overlaps(ctx, tx, provider, w.Start, w.End, except)
	if err != nil {
		return err
	}
	if clash {
		return ErrOverlap
	}
	return nil
}

// End ends locked visit v with status by the provider's hand, in tx:
// completed ("End visit") unless it has ended already, cancelled only
// before it started, a no-show only after its start if the patient never
// arrived (then Close). The caller appends the audit entry and the change
// notice.
func End(ctx context.Context, tx pgx.Tx, v store.ScheduledVisit, status string, now time.Time) error {
	switch status {
	case store.StatusCompleted:
		if store.Closed(v.Status) {
			return ErrVisitClosed
		}
	case store.StatusCancelled:
		if v.Status != store.StatusScheduled && v.Status != store.StatusWaiting {
			return ErrNotCancellable
		}
	case store.StatusNoShow:
		if v.Status != store.StatusScheduled || v.ScheduledStart == nil || now.Before(*v.ScheduledStart) {
			return ErrNotNoShow
		}
	default:
		return ErrNotClosing
	}
	return Close(ctx, tx, v.ID, status, now)
}
