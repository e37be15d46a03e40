package breakglass_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/breakglass"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

func user(t *testing.T, d *store.DB, role string) ids.UserID {
	t.Helper()
	return storetest.User(t, d, role+"-"+string(ids.NewParticipantID())+"@clinic.test", "Someone", role).ID
}

// TestGrant: a grant needs a reason and another provider's visit; it
// opens the visit to its holder, and commits with its audit entry and an
// alert that carry no reason text.
func TestGrant(t *testing.T) {
	d := storetest.DB(t)
	ctx := context.Background()
	now := time.Now()
	svc := breakglass.New(breakglass.Params{Env: store.Env{DB: d, Clock: func() time.Time { return now }}, Duration: time.Hour})
	owner, other := user(t, d, "provider"), user(t, d, "provider")
	patient := storetest.Patient(t, d, store.Patient{Name: "Pat", DateOfBirth: "1980-01-02", CreatedBy: owner})
	visit := ids.NewVisitID()
	if err := store.ScheduleVisit(ctx, d, visit, owner, patient.ID, "", now, now.Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	reason := "Patient collapsed in the waiting area; covering provider needs the visit."

	tests := []struct {
		name string
		r    breakglass.Request
		want error
	}{
		{"no reason", breakglass.Request{User: other, Visit: visit, Reason: "   too short   "}, breakglass.ErrBadReason},
		{"reason too long", breakglass.Request{User: other, Visit: visit, Reason: strings.Repeat("x", 2001)}, breakglass.ErrBadReason},
		{"own visit", breakglass.Request{User: owner, Visit: visit, Reason: reason}, breakglass.ErrNotNeeded},
		{"no such visit", breakglass.Request{User: other, Visit: ids.NewVisitID(), Reason: reason}, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := svc.Grant(ctx, tt.r); !errors.Is(err, tt.want) {
				t.Fatalf("Grant: %v, want %v", err, tt.want)
			}
		})
	}

	g, err := svc.Grant(ctx, breakglass.Request{User: other, Visit: visit, Reason: reason,
		Event: audit.Event{ActorID: string(other), ActorRole: "provider"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, bg, err := store.VisitRelation(ctx, d, other, visit, now); err != nil || !bg {
		t.Fatalf("after the grant, break-glass relation %v (%v)", bg, err)
	}
	as, err := store.ListAlerts(ctx, d, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Kind != string(alerts.KindBreakGlass) || as[0].Subject != string(other) ||
		!strings.Contains(as[0].Detail, g.ID) || strings.Contains(as[0].Detail, "collapsed") {
		t.Errorf("alerts %+v, want one break_glass alert naming the grant and not the reason", as)
	}
	entries, err := d.Audit().Recent(ctx, string(visit), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Action != breakglass.ActionGrant || entries[0].ResourceID != g.ID ||
		strings.Contains(entries[0].Reason, "collapsed") {
		t.Errorf("audit %+v, want one grant entry with the grant's ID and not the reason", entries)
	}

	// Nobody reviews their own grant; another admin does.
	self := review.Reviewer{UserID: other, Event: audit.Event{ActorID: string(other), ActorRole: "admin"}}
	if err := svc.Review(ctx, self, g.ID); !errors.Is(err, review.ErrSelfReview) {
		t.Fatalf("own review: %v, want self-review refused", err)
	}
	admin := user(t, d, "admin")
	if err := svc.Review(ctx, review.Reviewer{UserID: admin, Event: audit.Event{ActorID: string(admin), ActorRole: "admin"}}, g.ID); err != nil {
		t.Fatalf("review by another admin: %v", err)
	}
	grants, err := svc.List(ctx)
	if err != nil || len(grants) != 1 || grants[0].ReviewedAt == nil {
		t.Fatalf("grants %+v (%v), want the one grant reviewed", grants, err)
	}
}
