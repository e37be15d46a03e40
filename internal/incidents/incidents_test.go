package incidents_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/incidents"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// TestIncidentRules: an incident needs a title and a discovery time not in
// the future; its deadline runs from discovery; its status moves between
// open, notified and closed; a scope names one actor or one key over a
// real range. Each change is audited.
func TestIncidentRules(t *testing.T) {
	f := newIncidentWorld(t)
	f.refuseReports(t)
	inc := f.openAndNotify(t)
	f.scopes(t, inc)
	f.audited(t, inc)
}

// incidentWorld is TestIncidentRules' world: an admin and the service at a
// fixed time.
type incidentWorld struct {
	ctx        context.Context
	d          *store.DB
	now        time.Time
	discovered time.Time // of the incident that opens
	svc        *incidents.Service
	admin      store.User
	ev         audit.Event
}

func newIncidentWorld(t *testing.T) *incidentWorld {
	f := &incidentWorld{ctx: context.Background(), d: storetest.DB(t), now: time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)}
	f.discovered = f.now.Add(-48 * time.Hour)
	f.svc = incidents.New(store.Env{DB: f.d, Clock: func() time.Time { return f.now }})
	admin := storetest.User(t, f.d, "admin-"+string(ids.NewParticipantID())+"@clinic.test", "Admin", "admin")
	f.admin, f.ev = admin, audit.Event{ActorID: string(admin.ID), ActorRole: "admin"}
	return f
}

// refuseReports: a title, and a discovery time not in the future.
func (f *incidentWorld) refuseReports(t *testing.T) {
	now := f.now
	refused := []struct {
		name string
		r    incidents.Report
		want error
	}{
		{"no title", incidents.Report{Title: "  ", DiscoveredAt: now}, incidents.ErrBadIncident},
		{"long title", incidents.Report{Title: strings.Repeat("t", 201), DiscoveredAt: now}, incidents.ErrBadIncident},
		{"no discovery time", incidents.Report{Title: "Laptop lost"}, incidents.ErrBadDiscovered},
		{"discovered tomorrow", incidents.Report{Title: "Laptop lost", DiscoveredAt: now.Add(24 * time.Hour)}, incidents.ErrBadDiscovered},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.By, tt.r.Event = f.admin.ID, f.ev
			if _, err := f.svc.Create(f.ctx, tt.r); !errors.Is(err, tt.want) {
				t.Fatalf("Create: %v, want %v", err, tt.want)
			}
		})
	}
}

// openAndNotify opens an incident (its deadline from discovery) and moves
// it to notified, past an unknown status and an unknown incident.
func (f *incidentWorld) openAndNotify(t *testing.T) store.Incident {
	ctx, svc, ev := f.ctx, f.svc, f.ev
	inc, err := svc.Create(ctx, incidents.Report{Title: " Laptop lost ", DiscoveredAt: f.discovered, By: f.admin.ID, Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	if inc.Title != "Laptop lost" || inc.Status != "open" || !inc.NotifyBy.Equal(f.discovered.Add(store.NotifyWithin)) {
		t.Errorf("incident %+v", inc)
	}
	if err := svc.SetStatus(ctx, inc.ID, "archived", ev); !errors.Is(err, incidents.ErrBadStatus) {
		t.Errorf("unknown status: %v", err)
	}
	if err := svc.SetStatus(ctx, string(ids.NewParticipantID()), "closed", ev); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no such incident: %v", err)
	}
	if err := svc.SetStatus(ctx, inc.ID, "notified", ev); err != nil {
		t.Fatal(err)
	}
	return inc
}

// scopes: one actor or one key, over a real range.
func (f *incidentWorld) scopes(t *testing.T, inc store.Incident) {
	discovered, now := f.discovered, f.now
	scopes := []struct {
		name string
		q    store.ScopeQuery
		want error
	}{
		{"neither actor nor key", store.ScopeQuery{From: discovered, To: now}, incidents.ErrBadScope},
		{"both", store.ScopeQuery{ActorID: "a", KEKID: "k", From: discovered, To: now}, incidents.ErrBadScope},
		{"empty range", store.ScopeQuery{ActorID: "a", From: now, To: now}, incidents.ErrBadRange},
		{"no range", store.ScopeQuery{ActorID: "a"}, incidents.ErrBadRange},
		{"actor", store.ScopeQuery{ActorID: string(f.admin.ID), From: discovered, To: now}, nil},
	}
	for _, tt := range scopes {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := f.svc.Scope(f.ctx, inc.ID, tt.q); !errors.Is(err, tt.want) {
				t.Fatalf("Scope: %v, want %v", err, tt.want)
			}
		})
	}
}

// audited: the creation and the status change, each with its entry.
func (f *incidentWorld) audited(t *testing.T, inc store.Incident) {
	var actions []string
	rows, err := f.d.Query(f.ctx, `SELECT action FROM audit_events WHERE resource_type = 'incident' AND resource_id = $1 ORDER BY seq`, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		_ = rows.Scan(&a)
		actions = append(actions, a)
	}
	if strings.Join(actions, ",") != incidents.ActionCreate+","+incidents.ActionStatus {
		t.Errorf("audited %v, want the creation and the status change", actions)
	}
}
