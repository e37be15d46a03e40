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
	d := storetest.DB(t)
	ctx := context.Background()
	now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	svc := incidents.New(store.Env{DB: d, Clock: func() time.Time { return now }})
	admin, err := store.CreateUser(ctx, d, "admin-"+string(ids.NewParticipantID())+"@clinic.test", "Admin", "admin")
	if err != nil {
		t.Fatal(err)
	}
	ev := audit.Event{ActorID: string(admin.ID), ActorRole: "admin"}

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
			tt.r.By, tt.r.Event = admin.ID, ev
			if _, err := svc.Create(ctx, tt.r); !errors.Is(err, tt.want) {
				t.Fatalf("Create: %v, want %v", err, tt.want)
			}
		})
	}

	discovered := now.Add(-48 * time.Hour)
	inc, err := svc.Create(ctx, incidents.Report{Title: " Laptop lost ", DiscoveredAt: discovered, By: admin.ID, Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	if inc.Title != "Laptop lost" || inc.Status != "open" || !inc.NotifyBy.Equal(discovered.Add(store.NotifyWithin)) {
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

	scopes := []struct {
		name string
		q    store.ScopeQuery
		want error
	}{
		{"neither actor nor key", store.ScopeQuery{From: discovered, To: now}, incidents.ErrBadScope},
		{"both", store.ScopeQuery{ActorID: "a", KEKID: "k", From: discovered, To: now}, incidents.ErrBadScope},
		{"empty range", store.ScopeQuery{ActorID: "a", From: now, To: now}, incidents.ErrBadRange},
		{"no range", store.ScopeQuery{ActorID: "a"}, incidents.ErrBadRange},
		{"actor", store.ScopeQuery{ActorID: string(admin.ID), From: discovered, To: now}, nil},
	}
	for _, tt := range scopes {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := svc.Scope(ctx, inc.ID, tt.q); !errors.Is(err, tt.want) {
				t.Fatalf("Scope: %v, want %v", err, tt.want)
			}
		})
	}

	var actions []string
	rows, err := d.Query(ctx, `SELECT action FROM audit_events WHERE resource_type = 'incident' AND resource_id = $1 ORDER BY seq`, inc.ID)
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
