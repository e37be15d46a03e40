package outbox_test

import (
	"context"
	"errors"
	"testing"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/outbox"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// TestReads: a provider reads only the mail they sent, an admin all of
// it; a list names each patient shown in the audit trail (and is recorded
// even when empty), a message or attachment read names its patient.
func TestReads(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	box := outbox.New(db)
	dr := storetest.User(t, db, "dr-mail@clinic.test", "Dr", store.RoleProvider)
	other := storetest.User(t, db, "dr-other@clinic.test", "Dr O", store.RoleProvider)
	p := storetest.Patient(t, db, store.Patient{Name: "Pat", DateOfBirth: "1980-01-02", CreatedBy: dr.ID})
	if err := box.Keep(ctx, store.OutboxMessage{SentBy: dr.ID, PatientID: p.ID, To: "pat@home.test", Subject: "Your visit",
		Body: "Join here", Attachments: []store.OutboxAttachment{{Name: "visit.ics", ContentType: "text/calendar", Data: []byte("BEGIN:VCALENDAR")}}}); err != nil {
		t.Fatal(err)
	}
	ev := audit.Event{ActorID: string(dr.ID), ActorRole: "provider", Action: "dev_outbox.read", ResourceType: "dev_outbox", Outcome: audit.Success}
	count := func(patient string) int {
		var n int
		q := `SELECT count(*) FROM audit_events WHERE action = 'dev_outbox.read' AND patient_id::text = $1`
		if patient == "" {
			q = `SELECT count(*) FROM audit_events WHERE action = 'dev_outbox.read' AND COALESCE(patient_id, '') = $1`
		}
		if err := db.QueryRow(ctx, q, patient).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	list, err := box.List(ctx, dr.ID, ev)
	if err != nil || len(list) != 1 || count(p.ID) != 1 {
		t.Fatalf("List: %d messages, %v; audited %d", len(list), err, count(p.ID))
	}
	if theirs, err := box.List(ctx, other.ID, ev); err != nil || len(theirs) != 0 || count("") != 1 {
		t.Errorf("another provider's list: %d messages, %v; empty list audited %d", len(theirs), err, count(""))
	}
	if _, err := box.Message(ctx, list[0].ID, other.ID, ev); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another provider reads it: %v", err)
	}
	m, err := box.Message(ctx, list[0].ID, "", ev)
	if err != nil || m.Body != "Join here" || count(p.ID) != 2 {
		t.Errorf("admin reads it: %+v, %v; audited %d", m, err, count(p.ID))
	}
	a, err := box.Attachment(ctx, list[0].ID, "0", dr.ID, ev)
	if err != nil || a.Name != "visit.ics" || count(p.ID) != 3 {
		t.Errorf("attachment: %+v, %v", a, err)
	}
	if _, err := box.Attachment(ctx, list[0].ID, "9", dr.ID, ev); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no such attachment: %v", err)
	}
}
