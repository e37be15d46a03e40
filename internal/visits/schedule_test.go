package visits_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
	"github.com/openvisit/openvisit/internal/visits"
)

// TestSchedule: a visit lasts 5 to 240 minutes, starts no earlier than
// just now and at most a year ahead, has a short reason and one of the
// provider's own patients, and never overlaps another of their visits.
func TestSchedule(t *testing.T) {
	f := newScheduling(t)
	f.book(t)
	f.startNow(t)
	f.list(t)
}

// scheduling is TestSchedule's world: a provider with a patient, another
// provider's patient, a media node, and a Scheduler at a fixed time.
type scheduling struct {
	ctx          context.Context
	db           *store.DB
	now          time.Time
	s            *visits.Scheduler
	dr           store.User
	mine, theirs store.Patient
}

func newScheduling(t *testing.T) *scheduling {
	f := &scheduling{ctx: context.Background(), db: storetest.DB(t), now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	db := f.db
	f.s = &visits.Scheduler{Env: store.Env{DB: db, Clock: func() time.Time { return f.now }}, Place: visits.Placement{Node: "node-a"}}
	storetest.MediaNode(t, db, "node-a")
	f.dr = storetest.User(t, db, "dr-sched@clinic.test", "Dr", store.RoleProvider)
	other := storetest.User(t, db, "dr-other@clinic.test", "Dr O", store.RoleProvider)
	f.mine = storetest.Patient(t, db, store.Patient{Name: "Pat", DateOfBirth: "1980-01-02", CreatedBy: f.dr.ID})
	f.theirs = storetest.Patient(t, db, store.Patient{Name: "Other", DateOfBirth: "1981-01-02", CreatedBy: other.ID})
	return f
}

// book: the booking rules, ending with two visits booked an hour from now.
func (f *scheduling) book(t *testing.T) {
	ctx, db, now, s, dr, mine, theirs := f.ctx, f.db, f.now, f.s, f.dr, f.mine, f.theirs
	at := now.Add(time.Hour)
	long := string(make([]rune, visits.MaxReason+1))
	tests := []struct {
		name string
		b    visits.Booking
		want error
	}{
		{"too short", visits.Booking{Patient: mine.ID, Start: at, Duration: 4 * time.Minute}, visits.ErrBadDuration},
		{"too long", visits.Booking{Patient: mine.ID, Start: at, Duration: 241 * time.Minute}, visits.ErrBadDuration},
		{"in the past", visits.Booking{Patient: mine.ID, Start: now.Add(-6 * time.Minute), Duration: time.Hour}, visits.ErrInPast},
		{"too far ahead", visits.Booking{Patient: mine.ID, Start: now.Add(367 * 24 * time.Hour), Duration: time.Hour}, visits.ErrTooFarAhead},
		{"reason too long", visits.Booking{Patient: mine.ID, Start: at, Duration: time.Hour, Reason: long}, visits.ErrReasonTooLong},
		{"another provider's patient", visits.Booking{Patient: theirs.ID, Start: at, Duration: time.Hour}, visits.ErrUnknownPatient},
		{"ok", visits.Booking{Patient: mine.ID, Start: at, Duration: time.Hour, Reason: " follow-up "}, nil},
		{"overlap", visits.Booking{Patient: mine.ID, Start: at.Add(30 * time.Minute), Duration: time.Hour}, visits.ErrOverlap},
		{"just after", visits.Booking{Patient: mine.ID, Start: at.Add(time.Hour), Duration: time.Hour}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.b.Provider, tt.b.Event = dr.ID, audit.Event{ActorID: string(dr.ID), ActorRole: "provider", Action: "visit.create", ResourceType: "visit", Outcome: audit.Success}
			id, err := s.Schedule(ctx, tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Schedule: %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			v, err := store.ScheduledVisitByID(ctx, db, id, false)
			if err != nil || v.PatientID != mine.ID || v.NodeID != "node-a" || !v.ScheduledStart.Equal(tt.b.Start) {
				t.Errorf("scheduled %+v, %v", v, err)
			}
		})
	}
}

// startNow: an unscheduled visit, placed on the node.
func (f *scheduling) startNow(t *testing.T) {
	id, err := f.s.StartNow(f.ctx, f.dr.ID, audit.Event{ActorID: string(f.dr.ID), ActorRole: "provider", Action: "visit.create", ResourceType: "visit", Outcome: audit.Success})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := store.ScheduledVisitByID(f.ctx, f.db, id, false); err != nil || v.ScheduledStart != nil || v.NodeID != "node-a" {
		t.Errorf("unscheduled visit %+v, %v", v, err)
	}
}

// list: a bounded range, one audit entry per patient on it.
func (f *scheduling) list(t *testing.T) {
	ctx, db, now, s, dr := f.ctx, f.db, f.now, f.s, f.dr
	list := audit.Event{ActorID: string(dr.ID), ActorRole: "provider", Action: "visit.list", ResourceType: "visit", Outcome: audit.Success}
	if _, err := s.List(ctx, dr.ID, now, now, list); !errors.Is(err, visits.ErrBadRange) {
		t.Errorf("empty range: %v", err)
	}
	if _, err := s.List(ctx, dr.ID, now, now.Add(visits.MaxListRange+time.Hour), list); !errors.Is(err, visits.ErrBadRange) {
		t.Errorf("range too long: %v", err)
	}
	got, err := s.List(ctx, dr.ID, now.Add(-time.Hour), now.Add(7*24*time.Hour), list)
	booked := 0
	for _, v := range got {
		if v.ScheduledStart != nil {
			booked++
		}
	}
	if err != nil || booked != 2 {
		t.Fatalf("List: %d scheduled visits, %v", booked, err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = 'visit.list' AND patient_id = $1`, f.mine.ID).Scan(&n); err != nil || n != 1 {
		t.Errorf("two visits of one patient listed: %d entries naming them (%v)", n, err)
	}
}

// TestRescheduleAndEnd: only a scheduled visit that has not started moves,
// never onto another; a visit is cancelled only before it starts and is a
// no-show only after its start.
func TestRescheduleAndEnd(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	now := time.Now().Truncate(time.Second)
	a := scheduled(t, db, now.Add(time.Hour), now.Add(2*time.Hour), store.StatusScheduled)
	started := scheduled(t, db, now.Add(-time.Hour), now.Add(time.Hour), store.StatusInProgress)
	in := func(id ids.VisitID, fn func(pgx.Tx, store.ScheduledVisit) error) error {
		return db.Tx(ctx, func(tx pgx.Tx) error {
			v, err := store.ScheduledVisitByID(ctx, tx, id, true)
			if err != nil {
				return err
			}
			return fn(tx, v)
		})
	}
	w, err := visits.NewWindow(now.Add(3*time.Hour), time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	move := func(id ids.VisitID) error {
		return in(id, func(tx pgx.Tx, v store.ScheduledVisit) error { return visits.Reschedule(ctx, tx, v, w) })
	}
	end := func(id ids.VisitID, status string, at time.Time) error {
		return in(id, func(tx pgx.Tx, v store.ScheduledVisit) error { return visits.End(ctx, tx, v, status, at) })
	}
	if err := move(started); !errors.Is(err, visits.ErrNotScheduled) {
		t.Errorf("move a started visit: %v", err)
	}
	if err := move(a); err != nil {
		t.Errorf("move: %v", err)
	}
	if err := end(started, store.StatusCancelled, now); !errors.Is(err, visits.ErrNotCancellable) {
		t.Errorf("cancel a started visit: %v", err)
	}
	if err := end(a, store.StatusNoShow, now); !errors.Is(err, visits.ErrNotNoShow) {
		t.Errorf("no-show before the start: %v", err)
	}
	if err := end(a, store.StatusNoShow, now.Add(4*time.Hour)); err != nil {
		t.Errorf("no-show after the start: %v", err)
	}
	if err := end(a, store.StatusCompleted, now); !errors.Is(err, visits.ErrVisitClosed) {
		t.Errorf("end an ended visit: %v", err)
	}
	if err := end(started, store.StatusCompleted, now); err != nil {
		t.Errorf("end: %v", err)
	}
}
