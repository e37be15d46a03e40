package visits_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
	"github.com/openvisit/openvisit/internal/visits"
)

// TestMove: the waiting room's moves, each from the states it starts from;
// admitting starts the visit, the other moves end the patient's sessions.
func TestMove(t *testing.T) {
	ctx := context.Background()
	d := storetest.DB(t)
	now := time.Now()
	v := scheduled(t, d, now, now.Add(time.Hour), store.StatusWaiting)
	waiting := func() ids.ParticipantID {
		pid := ids.NewParticipantID()
		if _, err := d.Exec(ctx, `INSERT INTO participants (id, visit_id, role, subject, state) VALUES ($1, $2, 'patient', $3, 'waiting')`,
			string(pid), string(v), string(pid)); err != nil {
			t.Fatal(err)
		}
		if err := store.CreateSession(ctx, d, store.NewSession{IDHash: []byte(string(pid)), Kind: store.SessionPatient,
			VisitID: v, ParticipantID: pid, Now: now}); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	move := func(p ids.ParticipantID, to string) error {
		return d.Tx(ctx, func(tx pgx.Tx) error {
			sv, err := store.ScheduledVisitByID(ctx, tx, v, true)
			if err != nil {
				return err
			}
			return visits.Move(ctx, tx, sv, p, to, now)
		})
	}
	a, b := waiting(), waiting()
	tests := []struct {
		name string
		p    ids.ParticipantID
		to   string
		want error
	}{
		{"admit", a, visits.Admitted, nil},
		{"admit twice", a, visits.Admitted, &visits.WrongStateError{}},
		{"turn away the admitted", a, visits.TurnedAway, &visits.WrongStateError{}},
		{"remove the admitted", a, visits.Removed, nil},
		{"turn away the waiting", b, visits.TurnedAway, nil},
		{"no such participant", ids.NewParticipantID(), visits.Admitted, store.ErrNotFound},
		{"not a move", b, "waiting", visits.ErrNotAMove},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := move(tt.p, tt.to)
			var ws *visits.WrongStateError
			switch {
			case tt.want == nil && err != nil, tt.want != nil && err == nil:
				t.Fatalf("Move: %v, want %v", err, tt.want)
			case errors.As(tt.want, &ws):
				if !errors.As(err, &ws) {
					t.Fatalf("Move: %v, want wrong state", err)
				}
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Move: %v, want %v", err, tt.want)
			}
		})
	}
	sv, err := store.ScheduledVisitByID(ctx, d, v, false)
	if err != nil || sv.Status != store.StatusInProgress {
		t.Errorf("visit %q (%v), want in progress after an admission", sv.Status, err)
	}
	for _, p := range []ids.ParticipantID{a, b} {
		s, err := store.SessionByHash(ctx, d, []byte(string(p)))
		if err != nil || s.RevokedAt == nil {
			t.Errorf("session of %s: revoked %v (%v), want revoked", p, s.RevokedAt, err)
		}
	}
	if err := store.SetVisitStatus(ctx, d, v, store.StatusCompleted, now); err != nil {
		t.Fatal(err)
	}
	if err := move(waiting(), visits.Admitted); !errors.Is(err, visits.ErrVisitClosed) {
		t.Errorf("admit after the visit: %v, want visit closed", err)
	}
}
