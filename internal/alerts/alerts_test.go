package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/delivery"
)

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	return dbtest.Pool(t, 4)
}

func appendN(t *testing.T, l *audit.Log, n int, e audit.Event) {
	t.Helper()
	for range n {
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

type hook struct {
	mu     sync.Mutex
	bodies []Payload
	fail   bool
	secret []byte
	t      *testing.T
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := delivery.Verify(h.secret, r.Header.Get(delivery.HeaderTimestamp), r.Header.Get(delivery.HeaderSignature),
		body, time.Now(), time.Hour); err != nil {
		h.t.Errorf("webhook signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		h.t.Errorf("webhook body: %v", err)
	}
	h.bodies = append(h.bodies, p)
}

func TestAlertRules(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	h := &hook{secret: []byte("webhook-secret-for-tests"), t: t}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e := New(Params{
		Pool: pool,
		Rules: Rules{FailedSigninsAccount: 10, FailedSigninsIP: 30, SigninWindow: 15 * time.Minute,
			RecordingAccesses: 25, RecordingWindow: time.Hour},
		WebhookURL: srv.URL, WebhookSecret: h.secret,
	})
	seedAlertActivity(t, audit.New(pool))

	raised, err := e.Evaluate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[Kind]string{}
	for _, a := range raised {
		got[Kind(a.Kind+"/"+a.Subject)] = a.Severity
	}
	want := map[Kind]string{
		KindFailedSigninsAccount + "/user-over":    "warning",
		KindFailedSigninsIP + "/203.0.113.9":       "warning",
		KindBulkRecordingAccess + "/curious-admin": "critical",
	}
	for k, sev := range want {
		if got[k] != sev {
			t.Errorf("alert %s: severity %q, want %q", k, got[k], sev)
		}
	}
	if len(got) != len(want) {
		t.Errorf("raised %v, want exactly %v", got, want)
	}

	// A second evaluation within the window raises nothing new.
	again, err := e.Evaluate(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second evaluation raised %v (%v), want none", again, err)
	}
	checkDeliveryRetried(t, e, h, pool)

	// Alerts raised elsewhere (a failed checkpoint) go out the same way.
	e.Raise(ctx, KindCheckpointFailed, "", "bucket unreachable")
	if err := e.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.bodies); n != 4 || h.bodies[3].Kind != string(KindCheckpointFailed) {
		t.Fatalf("webhook after Raise: %d alerts, last %+v", n, h.bodies[n-1])
	}
}

// seedAlertActivity audits what the rules look at: failed sign-ins over
// and under the thresholds, and recording accesses that do and do not
// count as bulk.
func seedAlertActivity(t *testing.T, log *audit.Log) {
	t.Helper()
	// One account over the threshold, one just under it.
	appendN(t, log, 10, audit.Event{Action: "auth.login", Outcome: audit.Failure, ActorID: "user-over", IP: "198.51.100.1"})
	appendN(t, log, 9, audit.Event{Action: "auth.login", Outcome: audit.Failure, ActorID: "user-under", IP: "198.51.100.2"})
	// One address guessing at many accounts (unknown accounts have no actor).
	appendN(t, log, 30, audit.Event{Action: "auth.login", Outcome: audit.Failure, IP: "203.0.113.9"})
	// One actor reading many recordings; another playing one recording
	// with many Range requests (each audited), which is one recording.
	for i := range 25 {
		appendN(t, log, 1, audit.Event{Action: "recording.view", Outcome: audit.Success, ActorID: "curious-admin",
			ResourceType: "recording", ResourceID: fmt.Sprintf("rec-%d", i)})
	}
	appendN(t, log, 60, audit.Event{Action: "recording.play", Outcome: audit.Success, ActorID: "normal-provider",
		ResourceType: "recording", ResourceID: "rec-watched"})
	// Denied recording reads do not count as accesses.
	for i := range 30 {
		appendN(t, log, 1, audit.Event{Action: "recording.play", Outcome: audit.Denied, ActorID: "outsider",
			ResourceType: "recording", ResourceID: fmt.Sprintf("rec-%d", i)})
	}
}

// checkDeliveryRetried: a failing webhook keeps the three raised alerts
// pending, then they all go, once each, signed.
func checkDeliveryRetried(t *testing.T, e *Engine, h *hook, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	h.fail = true
	if err := e.Deliver(ctx); err == nil {
		t.Fatal("Deliver to a failing webhook reported success")
	}
	h.mu.Lock()
	h.fail = false
	h.mu.Unlock()
	if err := e.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.bodies) != 3 {
		t.Fatalf("webhook got %d alerts, want 3 (each once)", len(h.bodies))
	}
	var pending int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE notified_at IS NULL`).Scan(&pending)
	if pending != 0 {
		t.Errorf("%d alerts still pending after delivery", pending)
	}
}
