package patients_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/patients"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// TestCheck: a record needs a name and a real date of birth; email, phone
// and state are empty or plausible; fields are trimmed, the state
// upper-cased.
func TestCheck(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		p    store.Patient
		want error
	}{
		{"ok", store.Patient{Name: " Pat ", DateOfBirth: "1980-01-02", State: " ca "}, nil},
		{"no name", store.Patient{Name: "  ", DateOfBirth: "1980-01-02"}, patients.ErrBadName},
		{"name too long", store.Patient{Name: strings.Repeat("é", patients.MaxName+1), DateOfBirth: "1980-01-02"}, patients.ErrBadName},
		{"born in the future", store.Patient{Name: "Pat", DateOfBirth: "2026-03-03"}, patients.ErrBadDOB},
		{"born before 1900", store.Patient{Name: "Pat", DateOfBirth: "1899-12-31"}, patients.ErrBadDOB},
		{"bad email", store.Patient{Name: "Pat", DateOfBirth: "1980-01-02", Email: "pat at home"}, patients.ErrBadEmail},
		{"bad phone", store.Patient{Name: "Pat", DateOfBirth: "1980-01-02", Phone: "call me"}, patients.ErrBadPhone},
		{"unknown state", store.Patient{Name: "Pat", DateOfBirth: "1980-01-02", State: "XX"}, patients.ErrBadState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			if err := patients.Check(&p, now); !errors.Is(err, tt.want) {
				t.Fatalf("Check: %v, want %v", err, tt.want)
			}
			if tt.want == nil && (p.Name != "Pat" || p.State != "CA") {
				t.Errorf("not normalised: %+v", p)
			}
		})
	}
}

// TestSearchAudited: a search records one entry per patient it shows (and
// none when it shows nobody); reading a record records it.
func TestSearchAudited(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	svc := patients.New(store.Env{DB: db})
	dr := storetest.User(t, db, "dr-search@clinic.test", "Dr", store.RoleProvider)
	ev := audit.Event{ActorID: string(dr.ID), ActorRole: "provider", Action: "patient.create", ResourceType: "patient", Outcome: audit.Success}
	var made []store.Patient
	for _, name := range []string{"Ada Search", "Alan Search"} {
		p, err := svc.Create(ctx, store.Patient{Name: name, DateOfBirth: "1980-01-02", CreatedBy: dr.ID}, ev)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, p)
	}
	count := func(patient string) int {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = 'patient.view' AND patient_id::text = $1`, patient).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	view := audit.Event{ActorID: string(dr.ID), ActorRole: "provider", Action: "patient.view", ResourceType: "patient", Outcome: audit.Success, Reason: "search"}
	list, err := svc.Search(ctx, dr.ID, "search", view)
	if err != nil || len(list) != 2 {
		t.Fatalf("Search: %d found, %v", len(list), err)
	}
	for _, p := range made {
		if n := count(p.ID); n != 1 {
			t.Errorf("patient shown once, audited %d times", n)
		}
	}
	if _, err := svc.Search(ctx, dr.ID, strings.Repeat("x", patients.MaxQuery+1), view); !errors.Is(err, patients.ErrBadQuery) {
		t.Errorf("long search: %v", err)
	}
	var before int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if list, err := svc.Search(ctx, dr.ID, "nobody by that name", view); err != nil || len(list) != 0 {
		t.Fatalf("empty search: %v, %v", list, err)
	}
	var after int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("a search that shows nobody wrote %d entries", after-before)
	}
	view.Reason, view.PatientID, view.ResourceID = "", made[0].ID, made[0].ID
	if _, err := svc.Get(ctx, made[0].ID, view); err != nil || count(made[0].ID) != 2 {
		t.Errorf("Get: %v, audited %d times in all", err, count(made[0].ID))
	}
}

// TestMRN: a medical record number is stored sealed, found by its exact
// blind index (system and value both count), and unique; a malformed one
// is refused.
func TestMRN(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	svc := patients.New(store.Env{DB: db})
	dr := storetest.User(t, db, "dr-mrn@clinic.test", "Dr", store.RoleProvider)
	ev := audit.Event{ActorID: string(dr.ID), ActorRole: "provider", Action: "patient.create", ResourceType: "patient", Outcome: audit.Success}
	p, err := svc.Create(ctx, store.Patient{Name: "Mo Record", DateOfBirth: "1980-01-02", MRN: " urn:oid:1.2.3 | A-77 ", CreatedBy: dr.ID}, ev)
	if err != nil {
		t.Fatal(err)
	}
	if p.MRN != "urn:oid:1.2.3|A-77" {
		t.Fatalf("MRN stored as %q, want it normalised", p.MRN)
	}
	got, err := store.PatientByMRN(ctx, db, "urn:oid:1.2.3|A-77")
	if err != nil || got.ID != p.ID || got.MRN != p.MRN {
		t.Fatalf("PatientByMRN = %+v, %v", got, err)
	}
	for _, other := range []string{"urn:oid:1.2.3|a-77", "urn:oid:9|A-77", ""} {
		if _, err := store.PatientByMRN(ctx, db, other); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PatientByMRN(%q) = %v, want not found", other, err)
		}
	}
	var plain *string
	var sealed []byte
	if err := db.QueryRow(ctx, `SELECT mrn, mrn_ct FROM patients WHERE id = $1`, p.ID).Scan(&plain, &sealed); err != nil {
		t.Fatal(err)
	}
	if plain != nil || len(sealed) == 0 || strings.Contains(string(sealed), "A-77") {
		t.Fatalf("MRN not sealed: plain %v, %d bytes sealed", plain, len(sealed))
	}
	if _, err := svc.Create(ctx, store.Patient{Name: "Twin", DateOfBirth: "1980-01-02", MRN: "urn:oid:1.2.3|A-77", CreatedBy: dr.ID}, ev); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second patient with the MRN: %v, want ErrConflict", err)
	}
	for _, bad := range []string{"no-bar", "|value", "system|", "sys|val\x01"} {
		if _, err := svc.Create(ctx, store.Patient{Name: "Bad", DateOfBirth: "1980-01-02", MRN: bad, CreatedBy: dr.ID}, ev); !errors.Is(err, patients.ErrBadMRN) {
			t.Errorf("MRN %q: %v, want ErrBadMRN", bad, err)
		}
	}
}
