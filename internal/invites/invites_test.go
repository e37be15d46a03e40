package invites_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/invites"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

const dob = "1980-01-02"

// recorder keeps the refusals a Service audits outside its transactions.
type recorder struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (r *recorder) record(_ context.Context, e audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

func (r *recorder) last() audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.evs) == 0 {
		return audit.Event{}
	}
	return r.evs[len(r.evs)-1]
}

// now is the tests' fixed time.
var now = time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)

// newService is a fresh database and an invites service on it, at now,
// whose refusals rec records.
func newService(t *testing.T) (d *store.DB, svc *invites.Service, rec *recorder) {
	d, rec = storetest.DB(t), &recorder{}
	return d, invites.New(invites.Params{Env: store.Env{DB: d, Clock: func() time.Time { return now }}, Record: rec.record}), rec
}

// visitWithInvite schedules a visit from start for an hour, with a patient
// born on dob, and returns it with its invite's secret.
func visitWithInvite(t *testing.T, d *store.DB, start time.Time) (ids.VisitID, string) {
	t.Helper()
	ctx := context.Background()
	u := storetest.User(t, d, "dr-"+string(ids.NewParticipantID())+"@clinic.test", "Dr", "provider")
	p := storetest.Patient(t, d, store.Patient{Name: "Pat", DateOfBirth: dob, CreatedBy: u.ID})
	v := ids.NewVisitID()
	if err := store.ScheduleVisit(ctx, d, v, u.ID, p.ID, "", start, start.Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	_, secret, err := store.CreateInvite(ctx, d, v, start.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return v, secret
}

// TestRedeemRefusals: each state an invite can be in refuses with its own
// reason, and the refusal is audited with that reason.
func TestRedeemRefusals(t *testing.T) {
	d, svc, rec := newService(t)
	ctx := context.Background()

	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the secret to redeem
		want  error
	}{
		{"unknown link", func(*testing.T) string { return "no-such-secret" }, invites.ErrInvalid},
		{"too early", func(t *testing.T) string {
			_, s := visitWithInvite(t, d, now.Add(3*time.Hour))
			return s
		}, invites.ErrTooEarly},
		{"expired", func(t *testing.T) string {
			_, s := visitWithInvite(t, d, now.Add(-3*time.Hour))
			return s
		}, invites.ErrExpired},
		{"withdrawn", func(t *testing.T) string {
			v, s := visitWithInvite(t, d, now)
			if _, err := store.RevokeInvites(ctx, d, v, now); err != nil {
				t.Fatal(err)
			}
			return s
		}, invites.ErrRevoked},
		{"visit ended", func(t *testing.T) string {
			v, s := visitWithInvite(t, d, now)
			if err := store.SetVisitStatus(ctx, d, v, store.StatusCancelled, now); err != nil {
				t.Fatal(err)
			}
			return s
		}, invites.ErrVisitEnded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Redeem(ctx, invites.Redemption{Secret: tt.setup(t), DateOfBirth: dob})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Redeem: %v, want %v", err, tt.want)
			}
			ev := rec.last()
			if ev.Outcome != audit.Denied || ev.Reason != tt.want.(*invites.Refusal).Code {
				t.Errorf("audited %q %q, want denied %q", ev.Outcome, ev.Reason, tt.want.(*invites.Refusal).Code)
			}
		})
	}
}

// TestRedeemDateOfBirth: wrong dates of birth count down and lock the
// link; each is recorded even though the redemption is refused.
func TestRedeemDateOfBirth(t *testing.T) {
	d, svc, _ := newService(t)
	ctx := context.Background()
	_, secret := visitWithInvite(t, d, now)
	for i := 1; i < invites.DOBTries; i++ {
		_, err := svc.Redeem(ctx, invites.Redemption{Secret: secret, DateOfBirth: "1990-01-01"})
		var r *invites.Refusal
		if !errors.As(err, &r) || r.Code != invites.ErrWrongDOB.Code || r.TriesLeft != invites.DOBTries-i {
			t.Fatalf("try %d: %v (%+v), want wrong date with %d left", i, err, r, invites.DOBTries-i)
		}
	}
	if _, err := svc.Redeem(ctx, invites.Redemption{Secret: secret}); !errors.Is(err, invites.ErrLocked) {
		t.Fatalf("last try: %v, want locked", err)
	}
	if _, err := svc.Redeem(ctx, invites.Redemption{Secret: secret, DateOfBirth: dob}); !errors.Is(err, invites.ErrLocked) {
		t.Fatalf("after locking, the right date: %v, want locked", err)
	}
}

// TestRedeemOnce: the right date of birth opens a session in the waiting
// room; the same browser may come back, another device may not.
func TestRedeemOnce(t *testing.T) {
	d, svc, _ := newService(t)
	ctx := context.Background()
	v, secret := visitWithInvite(t, d, now)
	a, err := svc.Redeem(ctx, invites.Redemption{Secret: secret, DateOfBirth: dob})
	if err != nil {
		t.Fatal(err)
	}
	if a.Visit != v || a.Participant == "" || a.Session == "" {
		t.Fatalf("admission %+v", a)
	}
	sv, err := store.ScheduledVisitByID(ctx, d, v, false)
	if err != nil || sv.Status != store.StatusWaiting {
		t.Fatalf("visit status %q (%v), want waiting", sv.Status, err)
	}
	if _, err := svc.Redeem(ctx, invites.Redemption{Secret: secret, DateOfBirth: dob}); !errors.Is(err, invites.ErrUsed) {
		t.Fatalf("another device: %v, want used", err)
	}
	back, err := svc.Redeem(ctx, invites.Redemption{Secret: secret, Current: invites.Patient{Visit: v, Participant: a.Participant}})
	if err != nil || back.Participant != a.Participant || back.Session != "" {
		t.Fatalf("same browser: %+v %v, want its place back and no new session", back, err)
	}
	used, lang, err := svc.Check(ctx, invites.Redemption{Secret: secret})
	if err != nil || !used || lang != "en" {
		t.Fatalf("Check from another device: %v %q %v, want used, en", used, lang, err)
	}
	used, _, err = svc.Check(ctx, invites.Redemption{Secret: secret, Current: invites.Patient{Visit: v, Participant: a.Participant}})
	if err != nil || used {
		t.Fatalf("Check from the same browser: %v %v, want not used", used, err)
	}
}
