package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/delivery"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
	"github.com/openvisit/openvisit/internal/webhooks"
)

// receiver is a real HTTPS receiver that answers from a script: one
// behaviour per request, then 200.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script []string // "500", "hang", then 200 for the rest
	got    []received
}

type received struct {
	body         []byte
	ts, sig      string
	kind, status string
}

func newReceiver(t *testing.T, script ...string) *receiver {
	r := &receiver{script: script}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	var p webhooks.Payload
	_ = json.Unmarshal(body, &p)
	r.mu.Lock()
	step := "200"
	if len(r.script) > 0 {
		step, r.script = r.script[0], r.script[1:]
	}
	r.got = append(r.got, received{body: body, ts: req.Header.Get(delivery.HeaderTimestamp),
		sig: req.Header.Get(delivery.HeaderSignature), kind: p.Kind, status: step})
	r.mu.Unlock()
	switch step {
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
	case "hang": // until the sender gives up (its client timeout), at most 10 s
		select {
		case <-req.Context().Done():
		case <-time.After(10 * time.Second):
		}
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// clock is the test's clock: it moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

type fixture struct {
	db      *store.DB
	sealer  *keys.Sealer
	subs    *webhooks.Subscriptions
	visit   ids.VisitID
	patient store.Patient
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := storetest.DB(t)
	sealer, err := keys.NewSealer([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	storetest.MediaNode(t, db, "node-1")
	prov := storetest.User(t, db, "prov@clinic.test", "Dr Prov", "provider")
	pat := storetest.Patient(t, db, store.Patient{Name: "Alice Patient", DateOfBirth: "1980-02-03",
		Email: "alice@example.test", CreatedBy: prov.ID})
	return &fixture{db: db, sealer: sealer, subs: &webhooks.Subscriptions{DB: db, Sealer: sealer},
		visit: ids.NewVisitID(), patient: pat}
}

func (f *fixture) providerOf(t *testing.T) ids.UserID {
	var id string
	if err := f.db.QueryRow(context.Background(), `SELECT id::text FROM users LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return ids.UserID(id)
}

// live runs a visit through schedule, start and end, each change in its
// own transaction as the services make them.
func (f *fixture) live(t *testing.T, start time.Time) {
	t.Helper()
	ctx := context.Background()
	steps := []func(tx store.DBTX) error{
		func(tx store.DBTX) error {
			return store.ScheduleVisit(ctx, tx, f.visit, f.providerOf(t), f.patient.ID, "node-1",
				start, start.Add(30*time.Minute), "follow-up of the rash")
		},
		func(tx store.DBTX) error {
			return store.SetVisitStatus(ctx, tx, f.visit, store.StatusInProgress, start)
		},
		func(tx store.DBTX) error { return store.SetVisitStatus(ctx, tx, f.visit, store.StatusCompleted, start) },
	}
	for _, step := range steps {
		if err := f.db.Tx(ctx, func(tx pgx.Tx) error { return step(tx) }); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWebhookDeliveredAndRetried: a receiver that fails the first
// deliveries (500, then a timeout) gets every event, in order, signed,
// the retries spaced by the backoff, and the delivery log shows each
// attempt; the payload carries IDs, no PHI.
func TestWebhookDeliveredAndRetried(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rcv := newReceiver(t, "500", "hang")
	sub, err := f.subs.Create(ctx, webhooks.NewSubscription{URL: rcv.srv.URL + "/hooks/openvisit",
		Kinds: []string{webhooks.KindVisitScheduled, webhooks.KindVisitStarted, webhooks.KindVisitEnded}},
		audit.Event{ActorID: "admin-1", ActorRole: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	client := rcv.srv.Client()
	client.Timeout = 500 * time.Millisecond
	backoff := delivery.Backoff{Base: time.Minute, Max: time.Hour, Jitter: 0.5, Limit: 5}
	d := webhooks.NewDeliverer(webhooks.DeliverParams{DB: f.db, Sealer: f.sealer, Client: client,
		Backoff: backoff, Now: clk.now, Rand: func() float64 { return 0.5 }})
	f.live(t, clk.now().Add(time.Hour))

	// The schedule: 1 min less a quarter (jitter 0.5 × 0.5), then 2 min less a quarter.
	firstWait, secondWait := 45*time.Second, 90*time.Second
	rounds := []struct {
		advance  time.Duration
		attempts int
	}{
		{0, 1},                       // 500
		{firstWait - time.Second, 0}, // not due yet; the later events wait behind it
		{time.Second, 1},             // timeout
		{secondWait - time.Second, 0},
		{time.Second, 3}, // accepted, and the two that waited
		{time.Hour, 0},
	}
	for i, r := range rounds {
		clk.advance(r.advance)
		n, err := d.DeliverDue(ctx)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if n != r.attempts {
			t.Fatalf("round %d (+%s): %d attempts, want %d", i, r.advance, n, r.attempts)
		}
	}
	checkReceived(t, rcv.received(), []byte(sub.Secret), f)
	checkLog(t, f, sub.ID, clk.now().Add(-time.Hour-firstWait-secondWait))
}

func checkReceived(t *testing.T, got []received, secret []byte, f *fixture) {
	t.Helper()
	var kinds, steps []string
	for _, r := range got {
		kinds, steps = append(kinds, r.kind), append(steps, r.status)
		ts := r.ts
		at, _ := time.Parse(time.RFC3339, "2026-12-01T09:00:00Z")
		if err := delivery.Verify(secret, ts, r.sig, r.body, at, time.Hour); err != nil {
			t.Errorf("%s: signature does not verify: %v", r.kind, err)
		}
		if delivery.Verify([]byte("another secret, not the subscription's"), ts, r.sig, r.body, at, time.Hour) == nil {
			t.Errorf("%s: signature verifies under the wrong secret", r.kind)
		}
		for _, phi := range []string{f.patient.Name, "rash", f.patient.Email} {
			if strings.Contains(string(r.body), phi) {
				t.Errorf("payload of a subscription without the PHI grant holds %q: %s", phi, r.body)
			}
		}
		if !strings.Contains(string(r.body), string(f.visit)) || !strings.Contains(string(r.body), f.patient.ID) {
			t.Errorf("payload lacks the visit's or patient's ID: %s", r.body)
		}
	}
	want := []string{"visit.scheduled", "visit.scheduled", "visit.scheduled", "visit.started", "visit.ended"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("kinds received in order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"500", "hang", "200", "200", "200"}, steps); diff != "" {
		t.Errorf("receiver's answers (-want +got):\n%s", diff)
	}
}

func checkLog(t *testing.T, f *fixture, sub string, t0 time.Time) {
	t.Helper()
	log, err := store.WebhookLog(context.Background(), f.db, sub, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 {
		t.Fatalf("delivery log: %d deliveries, want 3", len(log))
	}
	first := log[2] // newest first
	type row struct {
		At     time.Duration
		Status int
		Class  string
	}
	var got []row
	for _, a := range first.AttemptLog {
		got = append(got, row{a.At.Sub(t0), a.StatusCode, a.ErrorClass})
	}
	want := []row{{0, 500, delivery.ClassStatus}, {45 * time.Second, 0, delivery.ClassTimeout}, {135 * time.Second, 204, ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("first delivery's attempts (-want +got):\n%s", diff)
	}
	for _, e := range log {
		if e.Status != "delivered" {
			t.Errorf("delivery %d (%s) is %s, want delivered", e.ID, e.Kind, e.Status)
		}
	}
}

// TestWebhookEventKinds: each change that causes an event writes it (by
// trigger, in the change's transaction), only to subscribers of its kind;
// a subscription granted PHI gets the patient's name, and one whose
// receiver never accepts is failed at the backoff's limit.
func TestWebhookEventKinds(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rcv := newReceiver(t)
	all, err := f.subs.Create(ctx, webhooks.NewSubscription{URL: rcv.srv.URL, Kinds: webhooks.Kinds, MayReceivePHI: true},
		audit.Event{ActorID: "admin-1", ActorRole: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	dead := newReceiver(t, "500", "500", "500", "500", "500")
	if _, err := f.subs.Create(ctx, webhooks.NewSubscription{URL: dead.srv.URL, Kinds: []string{webhooks.KindVisitNoShow}},
		audit.Event{ActorID: "admin-1", ActorRole: "admin"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	other := ids.NewVisitID()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := f.db.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	f.live(t, now.Add(time.Hour))
	exec(`INSERT INTO participants (id, visit_id, role, state) VALUES (gen_random_uuid(), $1, 'patient', 'waiting')`, string(f.visit))
	exec(`INSERT INTO recordings (id, visit_id, participant_id, kek_id, wrapped_dek, segment_size, started_at, delete_after)
		VALUES (gen_random_uuid(), $1, gen_random_uuid(), 'k1', '\x00', 65536, now(), now() + interval '1 year')`, string(f.visit))
	exec(`UPDATE recordings SET status = 'complete' WHERE visit_id = $1`, string(f.visit))
	if err := store.ScheduleVisit(ctx, f.db, other, f.providerOf(t), f.patient.ID, "node-1", now.Add(2*time.Hour), now.Add(3*time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	if err := store.SetVisitStatus(ctx, f.db, other, store.StatusNoShow, now); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: now}
	client := rcv.srv.Client()
	d := webhooks.NewDeliverer(webhooks.DeliverParams{DB: f.db, Sealer: f.sealer, Client: client, Now: clk.now,
		Backoff: delivery.Backoff{Base: time.Minute, Max: time.Minute, Limit: 5}})
	for range 6 {
		if _, err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Minute)
	}
	var kinds []string
	for _, r := range rcv.received() {
		kinds = append(kinds, r.kind)
		if !strings.Contains(string(r.body), f.patient.Name) {
			t.Errorf("%s to a subscription granted PHI lacks the patient's name", r.kind)
		}
	}
	want := []string{"visit.scheduled", "visit.started", "visit.ended", "patient.waiting", "recording.available",
		"visit.scheduled", "visit.no_show"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	log, err := store.WebhookLog(ctx, f.db, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range log {
		if e.SubscriptionID != all.ID && (e.Status != "failed" || e.Attempts != 5) {
			t.Errorf("delivery to a receiver that never accepts: %s after %d attempts, want failed after 5", e.Status, e.Attempts)
		}
	}
	if n := len(dead.received()); n != 5 {
		t.Errorf("the failing receiver got %d attempts, want 5", n)
	}
}
