package recordings_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/recordings"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// TestConsent walks a visit's recording through its rules: nothing before
// a request, no switch before consent, a decline or a withdrawal ends
// consent and recording, and an ended visit takes no new request. Every
// step names itself in the audit trail.
func TestConsent(t *testing.T) {
	d := storetest.DB(t)
	ctx := context.Background()
	now := time.Now()
	svc := recordings.New(store.Env{DB: d, Clock: func() time.Time { now = now.Add(time.Second); return now }})
	dr := storetest.User(t, d, "dr-"+string(ids.NewParticipantID())+"@clinic.test", "Dr", "provider")
	p := storetest.Patient(t, d, store.Patient{Name: "Pat", DateOfBirth: "1980-01-02", CreatedBy: dr.ID})
	v := ids.NewVisitID()
	if err := store.ScheduleVisit(ctx, d, v, dr.ID, p.ID, "", now, now.Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	pid := ids.NewParticipantID()
	if _, err := d.Exec(ctx, `INSERT INTO participants (id, visit_id, role, subject, state) VALUES ($1, $2, 'patient', $3, 'admitted')`,
		string(pid), string(v), string(pid)); err != nil {
		t.Fatal(err)
	}
	provider := recordings.Change{Visit: v, Actor: string(dr.ID), Event: audit.Event{ActorID: string(dr.ID), ActorRole: "provider"}}
	patient := recordings.Change{Visit: v, Actor: string(pid), Participant: pid, Event: audit.Event{ActorID: string(pid), ActorRole: "patient"}}

	steps := []struct {
		name    string
		do      func() (recordings.State, error)
		want    error
		consent string
		on      bool
	}{
		{"answer before a request", func() (recordings.State, error) { return svc.Answer(ctx, patient, true) }, recordings.ErrNoRequest, "", false},
		{"start before consent", func() (recordings.State, error) { return svc.Start(ctx, provider) }, recordings.ErrNoConsent, "", false},
		{"withdraw before consent", func() (recordings.State, error) { return svc.Withdraw(ctx, patient) }, recordings.ErrNotGiven, "", false},
		{"request", func() (recordings.State, error) { return svc.Request(ctx, provider) }, nil, "none", false},
		{"consent", func() (recordings.State, error) { return svc.Answer(ctx, patient, true) }, nil, "given", false},
		{"start", func() (recordings.State, error) { return svc.Start(ctx, provider) }, nil, "given", true},
		{"withdraw", func() (recordings.State, error) { return svc.Withdraw(ctx, patient) }, nil, "withdrawn", false},
		{"start after withdrawal", func() (recordings.State, error) { return svc.Start(ctx, provider) }, recordings.ErrNoConsent, "", false},
		{"ask again", func() (recordings.State, error) { return svc.Request(ctx, provider) }, nil, "withdrawn", false},
		{"decline", func() (recordings.State, error) { return svc.Answer(ctx, patient, false) }, nil, "declined", false},
	}
	for _, st := range steps {
		got, err := st.do()
		if !errors.Is(err, st.want) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.want)
		}
		if err == nil && (got.Consent != st.consent || got.Recording != st.on) {
			t.Fatalf("%s: consent %q recording %v, want %q %v", st.name, got.Consent, got.Recording, st.consent, st.on)
		}
	}
	if err := store.SetVisitStatus(ctx, d, v, store.StatusCompleted, now); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Request(ctx, provider); !errors.Is(err, recordings.ErrVisitEnded) {
		t.Fatalf("request after the visit: %v, want visit ended", err)
	}

	entries, err := d.Audit().Recent(ctx, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range entries {
		if e.ResourceType == "recording_consent" && e.ResourceID == string(v) {
			count[e.Action]++
		}
	}
	want := map[string]int{recordings.ActionRequest: 2, recordings.ActionConsent: 1, recordings.ActionStartCmd: 1,
		recordings.ActionWithdraw: 1, recordings.ActionDecline: 1}
	for a, n := range want {
		if count[a] != n {
			t.Errorf("%d %s entries, want %d (all: %v)", count[a], a, n, count)
		}
	}
}

// TestAccess: who reaches a stored recording.
func TestAccess(t *testing.T) {
	d := storetest.DB(t)
	ctx := context.Background()
	svc := recordings.New(store.Env{DB: d})
	if _, _, err := svc.Access(ctx, string(ids.NewVisitID()), recordings.Viewer{Kind: access.Admin}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no such recording: %v", err)
	}
}
