package patients_test

import (
	"context"
	"slices"
	"testing"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/patients"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// TestPatientSearchOnEncryptedFields: with names, dates of birth and
// emails stored only as ciphertext (the plaintext columns are empty), the
// provider's search finds patients by a prefix of any name word (accents,
// case and apostrophes folded), by date of birth and by exact email, and
// by these together; it shows only the provider's own patients; the
// admin's lookup finds any patient by name and date of birth.
func TestPatientSearchOnEncryptedFields(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	svc := patients.New(store.Env{DB: db})
	dr := storetest.User(t, db, "dr-find@clinic.test", "Dr Find", store.RoleProvider)
	other := storetest.User(t, db, "dr-other@clinic.test", "Dr Other", store.RoleProvider)
	ev := audit.Event{ActorID: string(dr.ID), ActorRole: "provider", Action: "patient.create", ResourceType: "patient", Outcome: audit.Success}
	mk := func(by store.User, name, dob, email string) string {
		p, err := svc.Create(ctx, store.Patient{Name: name, DateOfBirth: dob, Email: email, CreatedBy: by.ID}, ev)
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	ada := mk(dr, "Ada Lovelace", "1915-12-10", "Ada@Example.test")
	adam := mk(dr, "Adam Smith", "1923-06-16", "")
	jose := mk(dr, "José O'Brien-Núñez", "1990-01-02", "jose@example.test")
	notMine := mk(other, "Ada Othersworth", "1915-12-10", "")

	var plain int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM patients WHERE name IS NOT NULL OR date_of_birth IS NOT NULL OR email IS NOT NULL OR phone IS NOT NULL`).Scan(&plain); err != nil || plain != 0 {
		t.Fatalf("%d patients keep plaintext (%v)", plain, err)
	}
	view := audit.Event{ActorID: string(dr.ID), ActorRole: "provider", Action: "patient.view", ResourceType: "patient", Outcome: audit.Success, Reason: "search"}
	tests := []struct {
		q    string
		want []string // in name order
	}{
		{"", []string{ada, adam, jose}},
		{"ad", []string{ada, adam}},
		{"Ada", []string{ada, adam}},
		{"lovelace", []string{ada}},
		{"LOVE", []string{ada}},
		{"ada love", []string{ada}},
		{"smith adam", []string{adam}},
		{"jose", []string{jose}},
		{"josé", []string{jose}},
		{"obrien", []string{jose}},
		{"O'Brien", []string{jose}},
		{"nunez", []string{jose}},
		{"1915-12-10", []string{ada}},
		{"ada 1915-12-10", []string{ada}},
		{"adam 1915-12-10", nil},
		{"ada@example.TEST", []string{ada}},
		{"ada@example", nil},
		{"velace", nil}, // prefixes, not substrings
		{"a", nil},      // shorter than phi.MinPrefix
		{"othersworth", nil},
		{"zz", nil},
	}
	for _, tt := range tests {
		list, err := svc.Search(ctx, dr.ID, tt.q, view)
		if err != nil {
			t.Fatalf("search %q: %v", tt.q, err)
		}
		var got []string
		for _, p := range list {
			got = append(got, p.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("search %q found %v, want %v", tt.q, got, tt.want)
		}
	}
	list, err := svc.Search(ctx, dr.ID, "lovelace", view)
	if err != nil || len(list) != 1 || list[0].Name != "Ada Lovelace" || list[0].DateOfBirth != "1915-12-10" || list[0].Email != "Ada@Example.test" {
		t.Errorf("the record found reads %+v, %v", list, err)
	}

	found, err := store.LookupPatients(ctx, db, "ada 1915-12-10", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range found {
		got = append(got, p.ID)
	}
	if !slices.Equal(got, []string{ada, notMine}) {
		t.Errorf("the admin's lookup found %v, want both patients named Ada born 1915-12-10 %v", got, []string{ada, notMine})
	}
}
