package signaling

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openvisit/openvisit/internal/delivery"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/reminders"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// TestReminderSent: with an injected clock, a visit's 24 h reminder goes
// once — two replicas sweeping at once send one email, through a real SMTP
// exchange — with a new link that works while the old one is revoked, and
// an SMS to the signed webhook carrying the phone number only in its body;
// nothing is due before the time, nor again after.
func TestReminderSent(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	t0 := time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC)
	now := t0
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }

	dr := storetest.User(t, db, "dr-remind@clinic.test", "Dr Remind", store.RoleProvider)
	p := storetest.Patient(t, db, store.Patient{Name: "Rema Inder", DateOfBirth: "1980-02-03", Email: "rema@example.test",
		Phone: "+1 555 0100", State: "CA", CreatedBy: dr.ID})
	visit := ids.VisitID(uuid.NewString())
	start := t0.Add(30 * time.Hour)
	if err := store.ScheduleVisit(ctx, db, visit, dr.ID, p.ID, "", start, start.Add(30*time.Minute), ""); err != nil {
		t.Fatal(err)
	}
	_, oldSecret, err := store.CreateInvite(ctx, db, visit, t0)
	if err != nil {
		t.Fatal(err)
	}

	addr, got := fakeSMTP(t)
	host, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	mail := ReminderMailer{Mailer: SMTPMailer{Host: host, Port: pn, From: "visits@clinic.test"}, PublicURL: "https://clinic.test", Now: clock}
	secret := []byte("sms webhook secret")
	sms := make(chan *http.Request, 4)
	bodies := make(chan []byte, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sms <- r
		bodies <- b
	}))
	t.Cleanup(hook.Close)
	svc := func() *reminders.Service {
		return reminders.New(reminders.Params{Env: store.Env{DB: db, Clock: clock}, Mail: mail,
			SMS: reminders.WebhookSender{URL: hook.URL + "/sms", Secret: secret, Now: clock}})
	}
	a, b := svc(), svc()

	if n, err := a.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("30 h before: sent %d, err %v; want nothing due", n, err)
	}
	set(start.Add(-24*time.Hour + time.Minute))
	var wg sync.WaitGroup
	sent := make([]int, 2)
	for i, s := range []*reminders.Service{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.Sweep(ctx)
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
			sent[i] = n
		}()
	}
	wg.Wait()
	if sent[0]+sent[1] != 1 {
		t.Fatalf("two replicas sent %d reminders, want 1", sent[0]+sent[1])
	}
	var tr string
	select {
	case tr = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no reminder reached the SMTP server")
	}
	checkReminderMail(t, ctx, db, tr, oldSecret)
	checkReminderSMS(t, <-sms, <-bodies, secret, visit, clock())
	if n, err := a.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("after it went: sent %d more, err %v; want none", n, err)
	}
}

// checkReminderMail: the email went to the patient with a new link that
// finds a live invite, while the old link's invite is revoked.
func checkReminderMail(t *testing.T, ctx context.Context, db *store.DB, tr, oldSecret string) {
	t.Helper()
	if !strings.Contains(tr, "RCPT TO:<rema@example.test>") || !strings.Contains(tr, "Reminder") {
		t.Fatalf("the transcript is not the reminder to the patient:\n%s", tr)
	}
	unfolded := strings.ReplaceAll(strings.ReplaceAll(tr, "=\r\n", ""), "=3D", "=")
	i := strings.Index(unfolded, "https://clinic.test/join#invite=")
	if i < 0 {
		t.Fatalf("no link in the reminder:\n%s", tr)
	}
	link := unfolded[i+len("https://clinic.test/join#invite="):]
	newSecret := link[:strings.IndexAny(link, "\r\n")]
	if newSecret == oldSecret {
		t.Fatal("the reminder repeats the old secret")
	}
	inv, err := store.PeekInvite(ctx, db, newSecret)
	if err != nil || inv.RevokedAt != nil {
		t.Errorf("the reminder's link: %v (revoked %v); want a live invite", err, inv.RevokedAt)
	}
	old, err := store.PeekInvite(ctx, db, oldSecret)
	if err != nil || old.RevokedAt == nil {
		t.Errorf("the old link: %v; want it revoked", err)
	}
	if strings.Contains(tr, "Rema") {
		t.Error("the reminder names the patient")
	}
}

// checkReminderSMS: the webhook got the phone number in the body only, and
// a signature that verifies with the shared secret.
func checkReminderSMS(t *testing.T, r *http.Request, body, secret []byte, visit ids.VisitID, now time.Time) {
	t.Helper()
	if err := delivery.Verify(secret, r.Header.Get(delivery.HeaderTimestamp), r.Header.Get(delivery.HeaderSignature), body, now, time.Minute); err != nil {
		t.Errorf("the signature does not verify: %v", err)
	}
	var m struct {
		To      string `json:"to"`
		Body    string `json:"body"`
		VisitID string `json:"visit_id"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.To != "+1 555 0100" || m.VisitID != string(visit) || !strings.Contains(m.Body, "tomorrow") {
		t.Errorf("sms body %+v", m)
	}
	if strings.Contains(r.URL.String(), "555") {
		t.Error("the phone number is in the webhook URL")
	}
}

// TestReminderSMSInInviteLanguage: the text message is in the invite's
// language (the default for a language the catalogue no longer has), says
// when, and carries no link.
func TestReminderSMSInInviteLanguage(t *testing.T) {
	m := ReminderMailer{PublicURL: "https://clinic.test"}
	for _, tc := range []struct {
		lang string
		off  time.Duration
		want []string
	}{
		{"es", 24 * time.Hour, []string{"Recordatorio", "mañana"}},
		{"es", 2 * time.Hour, []string{"dentro de 2 horas"}},
		{"en", time.Hour, []string{"Reminder", "in one hour"}},
		{"xx", 24 * time.Hour, []string{"Reminder", "tomorrow"}},
	} {
		got := m.SMSText(reminders.Reminder{Offset: tc.off, Lang: tc.lang, Secret: "s3cret"})
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s %v: %q lacks %q", tc.lang, tc.off, got, w)
			}
		}
		if strings.Contains(got, "http") || strings.Contains(got, "s3cret") {
			t.Errorf("%s: the text message carries a link: %q", tc.lang, got)
		}
	}
}
