package chat_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/chat"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

type fixture struct {
	svc               *chat.Service
	db                *store.DB
	visit             ids.VisitID
	provider, patient access.Principal
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	db := storetest.DB(t)
	now := time.Now()
	dr := storetest.User(t, db, "dr-chat@clinic.test", "Dr Chat", store.RoleProvider)
	p := storetest.Patient(t, db, store.Patient{Name: "Chatty Patient", DateOfBirth: "1970-01-02", State: "CA", CreatedBy: dr.ID})
	visit := ids.VisitID(uuid.NewString())
	if err := store.ScheduleVisit(ctx, db, visit, dr.ID, p.ID, "", now, now.Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	inv, _, err := store.CreateInvite(ctx, db, visit, now)
	if err != nil {
		t.Fatal(err)
	}
	pid := ids.ParticipantID(uuid.NewString())
	if err := store.AddWaitingInvitee(ctx, db, visit, pid, inv, now); err != nil {
		t.Fatal(err)
	}
	return fixture{svc: chat.New(chat.Params{Env: store.Env{DB: db}}), db: db, visit: visit,
		provider: access.Principal{Kind: access.Provider, UserID: dr.ID},
		patient:  access.Principal{Kind: access.Patient, VisitID: visit, ParticipantID: pid}}
}

func (f fixture) send(t *testing.T, who access.Principal, text string) (store.ChatMessage, error) {
	t.Helper()
	return f.svc.Send(context.Background(), chat.Post{Visit: f.visit, Sender: who, Text: text,
		Event: audit.Event{ActorID: who.ActorID(), ActorRole: string(who.Kind)}})
}

func (f fixture) admit(t *testing.T) {
	t.Helper()
	if err := store.SetParticipantState(context.Background(), f.db, f.visit, f.patient.ParticipantID, "admitted", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestSendOrderAndAccess: messages get one order (also when sent at once),
// each reader sees its own as Mine, a waiting patient cannot send, and a
// closed visit takes no more.
func TestSendOrderAndAccess(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.send(t, f.patient, "hello from the waiting room"); !errors.Is(err, chat.ErrNotInCall) {
		t.Fatalf("a waiting patient sends: err = %v, want ErrNotInCall", err)
	}
	f.admit(t)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := f.provider
			if i%2 == 1 {
				who = f.patient
			}
			if _, err := f.send(t, who, "message "+string(rune('a'+i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	list, err := f.svc.Since(ctx, f.patient, f.visit, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 10 {
		t.Fatalf("%d messages, want 10", len(list))
	}
	for i, m := range list {
		if m.Seq != int64(i+1) {
			t.Errorf("message %d has seq %d, want %d", i, m.Seq, i+1)
		}
		if m.Mine != (m.SenderRole == "patient") {
			t.Errorf("message %d (%s): mine = %v for the patient", i, m.SenderRole, m.Mine)
		}
	}
	if later, _ := f.svc.Since(ctx, f.provider, f.visit, 7); len(later) != 3 || later[0].Seq != 8 {
		t.Errorf("after 7: %d messages, want 3 from seq 8", len(later))
	}
	if err := store.SetVisitStatus(ctx, f.db, f.visit, "completed", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.send(t, f.provider, "after the end"); !errors.Is(err, chat.ErrVisitClosed) {
		t.Errorf("after the visit: err = %v, want ErrVisitClosed", err)
	}
}

// TestSendAuditedByIDAndSealed: each message has an audit entry naming it,
// the visit and the patient, and neither the audit trail nor the table
// holds its text.
func TestSendAuditedByIDAndSealed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const secret = "Quixotic rash on the left elbow"
	m, err := f.send(t, f.provider, secret)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := f.db.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = $1 AND resource_id = $2
		AND visit_id = $3 AND patient_id IS NOT NULL`, chat.ActionSend, m.ID, string(f.visit)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d audit entries name message %s, want 1", n, m.ID)
	}
	var plain *string
	var sealed []byte
	if err := f.db.Pool().QueryRow(ctx, `SELECT body, body_ct FROM chat_messages WHERE id = $1`, m.ID).Scan(&plain, &sealed); err != nil {
		t.Fatal(err)
	}
	if plain != nil || bytes.Contains(sealed, []byte("Quixotic")) {
		t.Error("the table holds the message's text")
	}
	var leaks int
	if err := f.db.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE reason ILIKE '%quixotic%'
		OR resource_id ILIKE '%quixotic%' OR action ILIKE '%quixotic%'`).Scan(&leaks); err != nil {
		t.Fatal(err)
	}
	if leaks != 0 {
		t.Error("the audit trail holds the message's text")
	}
	if _, err := f.db.Pool().Exec(ctx, `UPDATE chat_messages SET body = 'x' WHERE id = $1`, m.ID); err == nil {
		t.Error("the plaintext column accepted a value")
	}
}

func TestClean(t *testing.T) {
	long := strings.Repeat("é", chat.MaxRunes)
	for _, tc := range []struct {
		name, in, want string
		err            error
	}{
		{"trimmed", "  hi\r\nthere \n", "hi\nthere", nil},
		{"empty", " \n\t ", "", chat.ErrEmpty},
		{"longest", long, long, nil},
		{"too long", long + "e", "", chat.ErrTooLong},
		{"control", "bell\a", "", chat.ErrBadText},
		{"not utf-8", "caf\xe9", "", chat.ErrBadText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chat.Clean(tc.in)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("Clean = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// FuzzClean: the text of a message comes from the network; what Clean
// accepts is valid, bounded and trimmed.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"hi", " \r\n", "a\x00b", strings.Repeat("x", chat.MaxRunes+1), "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := chat.Clean(s)
		if err != nil {
			return
		}
		if got == "" || got != strings.TrimSpace(got) || len([]rune(got)) > chat.MaxRunes || strings.ContainsRune(got, 0) {
			t.Fatalf("Clean accepted %q", got)
		}
	})
}
