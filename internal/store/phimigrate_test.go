package store_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// TestPHIMigration: rows written in plaintext before migration 0012 read as
// before while they wait; the job seals them batch by batch, a rerun finds
// nothing left (it resumes where the last run stopped), and afterwards the
// plaintext columns are empty, the values read the same, and the search
// finds the patients through their new blind indexes.
func TestPHIMigration(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	dr := storetest.User(t, db, "dr-migrate@clinic.test", "Dr Migrate", store.RoleProvider)
	sealedAlready := storetest.Patient(t, db, store.Patient{Name: "Already Sealed", DateOfBirth: "1960-01-01", CreatedBy: dr.ID})
	var pids []string
	for _, name := range []string{"Old Plaintext", "Older Plaintext", "Oldest Plaintext"} {
		id := uuid.NewString()
		if _, err := db.Exec(ctx, `INSERT INTO patients (id, name, date_of_birth, email, phone, created_by)
			VALUES ($1, $2, '1950-05-06', 'old@example.test', '555-0100', $3)`, id, name, string(dr.ID)); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, id)
	}
	visit := uuid.NewString()
	if _, err := db.Exec(ctx, `INSERT INTO visits (id, provider_id, patient_id, reason) VALUES ($1, $2, $3, 'old reason')`,
		visit, string(dr.ID), pids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO break_glass (id, user_id, visit_id, reason, granted_at, expires_at)
		VALUES ($1, $2, $3, 'an old reason of twenty characters', now(), now())`, uuid.NewString(), string(dr.ID), visit); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO incidents (id, title, description, discovered_at, notify_by, created_by)
		VALUES ($1, 'old title', 'old description', now(), now(), $2)`, uuid.NewString(), string(dr.ID)); err != nil {
		t.Fatal(err)
	}

	before, err := store.PatientByID(ctx, db, pids[0])
	if err != nil || before.Name != "Old Plaintext" || before.DateOfBirth != "1950-05-06" || before.Email != "old@example.test" {
		t.Fatalf("a plaintext row before the job reads %+v, %v", before, err)
	}
	if found, err := store.FindPatients(ctx, db, dr.ID, "old plain", 10); err != nil || len(found) != 1 {
		t.Fatalf("the search before the job found %d (%v), want the one plaintext match", len(found), err)
	}
	if n, err := store.PlaintextPHIRows(ctx, db); err != nil || n != 6 {
		t.Fatalf("%d rows with plaintext (%v), want 6", n, err)
	}

	n, err := store.MigratePHI(ctx, db, 2)
	if err != nil || n != 6 {
		t.Fatalf("MigratePHI sealed %d rows (%v), want 6", n, err)
	}
	if n, err := store.MigratePHI(ctx, db, 2); err != nil || n != 0 {
		t.Fatalf("a rerun sealed %d rows (%v), want none", n, err)
	}
	if n, err := store.PlaintextPHIRows(ctx, db); err != nil || n != 0 {
		t.Fatalf("%d rows keep plaintext after the job (%v)", n, err)
	}
	after, err := store.PatientByID(ctx, db, pids[0])
	if err != nil || after != before {
		t.Errorf("after the job the row reads %+v (%v), want %+v", after, err, before)
	}
	if found, err := store.FindPatients(ctx, db, dr.ID, "old 1950-05-06", 10); err != nil || len(found) != 3 {
		t.Errorf("the search after the job found %d (%v), want the three migrated patients", len(found), err)
	}
	if found, err := store.FindPatients(ctx, db, dr.ID, "already", 10); err != nil || len(found) != 1 || found[0].ID != sealedAlready.ID {
		t.Errorf("the patient sealed before the job: %v, %v", found, err)
	}
	sv, err := store.ScheduledVisitByID(ctx, db, ids.VisitID(visit), false)
	if err != nil || sv.Reason != "old reason" || sv.PatientName != "Old Plaintext" {
		t.Errorf("the visit after the job: reason %q, patient %q, %v", sv.Reason, sv.PatientName, err)
	}
	grants, err := store.ListBreakGlass(ctx, db, 10)
	if err != nil || len(grants) != 1 || grants[0].Reason != "an old reason of twenty characters" {
		t.Errorf("the grant after the job: %+v, %v", grants, err)
	}
	incs, err := store.Incidents(ctx, db)
	if err != nil || len(incs) != 1 || incs[0].Title != "old title" || incs[0].Description != "old description" {
		t.Errorf("the incident after the job: %+v, %v", incs, err)
	}
}
