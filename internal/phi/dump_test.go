package phi_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
	"github.com/openvisit/openvisit/internal/testenv"
)

// pgDump finds pg_dump: on PATH, or where Debian puts PostgreSQL 15's.
func pgDump(t *testing.T) string {
	if p, err := exec.LookPath("pg_dump"); err == nil {
		return p
	}
	const debian = "/usr/lib/postgresql/15/bin/pg_dump"
	if _, err := os.Stat(debian); err != nil {
		testenv.Missing(t, "pg_dump")
	}
	return debian
}

// TestDatabaseDumpHasNoPlaintextPHI: patients, a visit's reason, an invite
// (and the email it leaves in the development outbox), a caregiver's invite
// with their name and email, a break-glass grant
// and an incident are written with recognisable values through the store;
// a real pg_dump of the database holds none of them, in any letter case —
// while it does hold the rows (their IDs).
func TestDatabaseDumpHasNoPlaintextPHI(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	now := time.Now()
	dr := storetest.User(t, db, "dr-dump@clinic.test", "Dr Dump", store.RoleProvider)
	admin := storetest.User(t, db, "admin-dump@clinic.test", "Admin Dump", store.RoleAdmin)
	secrets := []string{"Zebulon Quixotefield", "1961-07-14", "zebulon.quixote@example.test", "555-867-5309",
		"Persistent migraine with visual aura", "Patient Quixotefield unconscious in bay seven",
		"Laptop with Quixotefield chart stolen", "Left on the number 12 bus with the Zebulon file open",
		"Your video visit with Dr Dump, Zebulon", "Dear Zebulon Quixotefield, your visit link", "SUMMARY:Visit for Zebulon",
		"Wilhelmina Caretakerson", "wilhelmina.caretakerson@example.test"}
	p := storetest.Patient(t, db, store.Patient{Name: secrets[0], DateOfBirth: secrets[1], Email: secrets[2], Phone: secrets[3],
		State: "CA", CreatedBy: dr.ID})
	visit := ids.VisitID(p.ID[:8] + "-0000-4000-8000-000000000001")
	if err := store.ScheduleVisit(ctx, db, visit, dr.ID, p.ID, "", now, now.Add(time.Hour), secrets[4]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.CreateInvite(ctx, db, visit, now); err != nil {
		t.Fatal(err)
	}
	// A caregiver's invite with their name and email (the care team).
	carer, _, err := store.CreateRoleInvite(ctx, db, store.NewInvite{Visit: visit, Role: store.InviteeCaregiver, Name: secrets[11], Email: secrets[12]}, now)
	if err != nil {
		t.Fatal(err)
	}
	g, err := store.GrantBreakGlass(ctx, db, admin.ID, visit, secrets[5], now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	inc, err := store.CreateIncident(ctx, db, secrets[6], secrets[7], now, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddOutboxMessage(ctx, db, store.OutboxMessage{SentBy: dr.ID, PatientID: p.ID, VisitID: visit,
		To: secrets[2], Subject: secrets[8], Body: secrets[9],
		Attachments: []store.OutboxAttachment{{Name: "invite.ics", ContentType: "text/calendar", Data: []byte(secrets[10])}}}); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, pgDump(t), "--no-owner", "--dbname", db.Pool().Config().ConnString())
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("pg_dump: %v: %s", err, errOut.String())
	}
	dump := strings.ToLower(out.String())
	for _, id := range []string{p.ID, string(visit), g.ID, inc.ID, carer.ID} {
		if !strings.Contains(dump, id) {
			t.Fatalf("the dump lacks row %s: it is not a dump of the seeded database", id)
		}
	}
	for _, s := range secrets {
		if strings.Contains(dump, strings.ToLower(s)) {
			t.Errorf("the dump holds %q in plaintext", s)
		}
	}
	for _, word := range []string{"quixotefield", "zebulon", "migraine", "caretakerson"} {
		if strings.Contains(dump, word) {
			t.Errorf("the dump holds %q", word)
		}
	}
}
