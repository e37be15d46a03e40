package recordings_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/recordings"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
	"github.com/openvisit/openvisit/internal/visits"
)

// TestEveryInviteeConsents: with a patient and a caregiver in the call the
// recording starts only once both consented; an interpreter admitted while
// it runs pauses it (nothing is recorded) and is asked, and their consent
// resumes it.
func TestEveryInviteeConsents(t *testing.T) {
	d := storetest.DB(t)
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { now = now.Add(time.Second); return now }
	svc := recordings.New(store.Env{DB: d, Clock: clock})
	dr := storetest.User(t, d, "dr-"+string(ids.NewParticipantID())+"@clinic.test", "Dr", "provider")
	p := storetest.Patient(t, d, store.Patient{Name: "Pat", DateOfBirth: "1980-01-02", CreatedBy: dr.ID})
	v := ids.NewVisitID()
	if err := store.ScheduleVisit(ctx, d, v, dr.ID, p.ID, "", now, now.Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	add := func(role, state string) recordings.Change {
		pid := ids.NewParticipantID()
		if _, err := d.Exec(ctx, `INSERT INTO participants (id, visit_id, role, subject, state) VALUES ($1, $2, $3, $4, $5)`,
			string(pid), string(v), role, string(pid), state); err != nil {
			t.Fatal(err)
		}
		return recordings.Change{Visit: v, Actor: string(pid), Participant: pid, Event: audit.Event{ActorID: string(pid), ActorRole: role}}
	}
	provider := recordings.Change{Visit: v, Actor: string(dr.ID), Event: audit.Event{ActorID: string(dr.ID), ActorRole: "provider"}}
	patient, carer := add("patient", "admitted"), add("caregiver", "admitted")
	interp := add("interpreter", "waiting")
	must := func(st recordings.State, err error) recordings.State {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	must(svc.Request(ctx, provider))
	must(svc.Answer(ctx, patient, true))
	if _, err := svc.Start(ctx, provider); !errors.Is(err, recordings.ErrNoConsent) {
		t.Fatalf("start with the caregiver's consent missing: %v, want %v", err, recordings.ErrNoConsent)
	}
	must(svc.Answer(ctx, carer, true))
	if st := must(svc.Start(ctx, provider)); !st.Recording {
		t.Fatalf("start with everyone's consent: %+v", st)
	}

	// The interpreter is admitted while recording runs: it pauses.
	err := d.Tx(ctx, func(tx pgx.Tx) error {
		sv, err := store.ScheduledVisitByID(ctx, tx, v, true)
		if err != nil {
			return err
		}
		return visits.Move(ctx, tx, sv, interp.Participant, visits.Admitted, clock())
	})
	if err != nil {
		t.Fatal(err)
	}
	st := must(svc.StateFor(ctx, v, interp.Participant))
	if st.Recording || !st.AwaitingConsent || !st.Requested {
		t.Fatalf("after the interpreter joined: recording %v, awaiting consent %v, asked %v; want paused and asked",
			st.Recording, st.AwaitingConsent, st.Requested)
	}
	if st := must(svc.StateFor(ctx, v, patient.Participant)); st.Requested {
		t.Error("the patient, who answered, is asked again")
	}
	if _, err := svc.Start(ctx, provider); !errors.Is(err, recordings.ErrNoConsent) {
		t.Errorf("start while the interpreter has not answered: %v, want %v", err, recordings.ErrNoConsent)
	}
	if st := must(svc.Answer(ctx, interp, true)); !st.Recording || st.AwaitingConsent {
		t.Errorf("after the interpreter consented: recording %v, awaiting %v; want resumed", st.Recording, st.AwaitingConsent)
	}
}
