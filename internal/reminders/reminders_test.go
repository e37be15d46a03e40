package reminders_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/reminders"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// mailbox is a fake reminders.Mailer: it keeps the offsets it was asked
// to send, or fails.
type mailbox struct {
	sent []time.Duration
	fail error
}

func (m *mailbox) SendReminder(_ context.Context, r reminders.Reminder) error {
	if m.fail != nil {
		return m.fail
	}
	m.sent = append(m.sent, r.Offset)
	return nil
}

func (m *mailbox) SMSText(reminders.Reminder) string { return "reminder" }

// schedule makes a visit starting at start whose invite was made at made.
func schedule(t *testing.T, db *store.DB, start, made time.Time, email string) ids.VisitID {
	t.Helper()
	ctx := context.Background()
	dr := storetest.User(t, db, uuid.NewString()[:8]+"@clinic.test", "Dr R", store.RoleProvider)
	p := storetest.Patient(t, db, store.Patient{Name: "R Patient", DateOfBirth: "1990-01-01", Email: email, State: "CA", CreatedBy: dr.ID})
	v := ids.VisitID(uuid.NewString())
	if err := store.ScheduleVisit(ctx, db, v, dr.ID, p.ID, "", start, start.Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.CreateInvite(ctx, db, v, made); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestNearestReminderOnly: a visit whose both reminders are due at once
// gets the nearer one only; a link sent after a reminder's time gets none;
// a failed email leaves the reminder due (retried), the old link valid.
func TestNearestReminderOnly(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	schedule(t, db, now.Add(30*time.Minute), now.Add(-48*time.Hour), "a@example.test")   // both due: 1 h only
	schedule(t, db, now.Add(45*time.Minute), now.Add(-10*time.Minute), "b@example.test") // link sent 10 min ago: none

	failing := &mailbox{fail: errors.New("smtp down")}
	svc := reminders.New(reminders.Params{Env: store.Env{DB: db, Clock: clock}, Mail: failing})
	if n, err := svc.Sweep(ctx); err == nil || n != 0 {
		t.Fatalf("failing mail: sent %d, err %v; want an error", n, err)
	}
	mb := &mailbox{}
	svc = reminders.New(reminders.Params{Env: store.Env{DB: db, Clock: clock}, Mail: mb})
	n, err := svc.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(mb.sent) != 1 || mb.sent[0] != time.Hour {
		t.Errorf("sent %d reminders at %v; want one at 1h", n, mb.sent)
	}
	if n, _ := svc.Sweep(ctx); n != 0 {
		t.Errorf("a second sweep sent %d", n)
	}
}

// TestWebhookSender: https only (http to loopback for tests); a refusal
// by the webhook is an error that does not carry the number.
func TestWebhookSender(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"http://sms.example.test/hook", "ftp://x", "not a url"} {
		if err := (reminders.WebhookSender{URL: u}).Send(ctx, reminders.SMS{To: "+1 555 0199"}); err == nil {
			t.Errorf("%s: sent", u)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	err := reminders.WebhookSender{URL: srv.URL, Secret: []byte("k")}.Send(ctx, reminders.SMS{To: "+1 555 0199", Body: "hi"})
	if err == nil || strings.Contains(err.Error(), "555") {
		t.Errorf("a 502 from the webhook: err %v; want an error without the number", err)
	}
}
