// Package alerts watches the audit trail for suspicious activity and
// delivers alerts to admins: in the admin pages (the alerts table) and to a
// configured webhook, signed with HMAC-SHA256 as every webhook is
// (internal/delivery: the signature, the POST and its error classes).
//
// Rules run on a timer over windows of the audit trail, so they see every
// process's events. Delivery uses the alerts table as an outbox: an alert
// raised inside any transaction is sent after it commits, retried until the
// webhook accepts it, and survives a crash in between.
package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/delivery"
	"github.com/openvisit/openvisit/internal/store"
)

// ActionRecordingNotWorking is audited with the alert: what the recording
// actually did, beside the consent and the start command.
const ActionRecordingNotWorking = "recording.not_working"

// recordingWatchEvery is how often switched-on recordings are checked for
// media: the indicator turns within seconds, so should the alert.
const recordingWatchEvery = 2 * time.Second

// RecordingAccessActions are the audit actions that read recordings.
var RecordingAccessActions = []string{"recording.view", "recording.play", "recording.download"}

// Rules are the thresholds.
type Rules struct {
	FailedSigninsAccount int
	FailedSigninsIP      int
	SigninWindow         time.Duration
	RecordingAccesses    int
	RecordingWindow      time.Duration
}

// Params configure an Engine.
type Params struct {
	Pool   *pgxpool.Pool
	Rules  Rules
	Every  time.Duration
	Logger *slog.Logger
	Now    func() time.Time
	// WebhookURL and WebhookSecret enable delivery; empty URL: none.
	WebhookURL    string
	WebhookSecret []byte
	Client        *http.Client
}

// Engine evaluates the rules and delivers alerts. Lifecycle: New, then Run
// in one goroutine until its context ends; Evaluate and Deliver may also be
// called directly (tests, the CLI).
type Engine struct {
	p     Params
	log   *slog.Logger
	depth prometheus.Gauge
}

// New returns an Engine.
func New(p Params) *Engine {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Every <= 0 {
		p.Every = 30 * time.Second
	}
	if p.Client == nil {
		p.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Engine{p: p, log: p.Logger.With("component", "alerts"), depth: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "openvisit_alert_outbox_depth",
		Help: "Alerts not yet accepted by the alerts webhook, as of the last delivery round (0 without a webhook).",
	})}
}

// Collectors are the engine's metrics, for the process's registry.
func (e *Engine) Collectors() []prometheus.Collector { return []prometheus.Collector{e.depth} }

// Run evaluates and delivers every p.Every, and watches recordings every
// few seconds, until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.p.Every)
	defer t.Stop()
	rec := time.NewTicker(recordingWatchEvery)
	defer rec.Stop()
	for {
		if _, err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("alert rules failed", "err", err)
		}
		if err := e.Deliver(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("alert delivery failed; will retry", "err", err)
		}
		for wait := true; wait; {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				wait = false
			case <-rec.C:
				if n, err := e.WatchRecordings(ctx); err != nil && ctx.Err() == nil {
					e.log.Error("recording watch failed", "err", err)
				} else if n > 0 {
					wait = false // deliver the new alerts now
				}
			}
		}
	}
}

// WatchRecordings raises one alert (and audits it) for each visit whose
// recording is switched on but not working — no media written in time, or
// none any more — once per start, and returns how many it raised.
func (e *Engine) WatchRecordings(ctx context.Context) (int, error) {
	now := e.p.Now()
	failing, err := store.RecordingsNotWorking(ctx, e.p.Pool, now)
	if err != nil {
		return 0, fmt.Errorf("alerts: watch recordings: %w", err)
	}
	n := 0
	for _, c := range failing {
		raised, err := e.raiseRecordingAlert(ctx, c, now)
		if err != nil {
			return n, err
		}
		if raised {
			n++
		}
	}
	return n, nil
}

func (e *Engine) raiseRecordingAlert(ctx context.Context, c store.RecordingControl, now time.Time) (bool, error) {
	why := "no media reached the recorder after the start"
	if c.MediaAt != nil {
		why = "the recorder stopped receiving media"
	}
	var raised bool
	err := pgx.BeginFunc(ctx, e.p.Pool, func(tx pgx.Tx) error {
		ok, err := store.MarkRecordingAlerted(ctx, tx, c.VisitID, now)
		if err != nil || !ok {
			return err // another process raised it
		}
		v, err := store.VisitByID(ctx, tx, c.VisitID)
		if err != nil {
			return err
		}
		if _, err := Raise(ctx, tx, KindRecordingNotWorking, string(v.ProviderID),
			"recording of visit "+string(c.VisitID)+" is not working: "+why, now); err != nil {
			return err
		}
		raised = true
		return audit.AppendTx(ctx, tx, audit.Event{ActorID: "system:recording-watch", ActorRole: "system",
			Action: ActionRecordingNotWorking, ResourceType: "visit", ResourceID: string(c.VisitID),
			VisitID: string(c.VisitID), Outcome: audit.Failure, Reason: why})
	})
	if err != nil {
		return false, fmt.Errorf("alerts: recording alert: %w", err)
	}
	if raised {
		e.log.Warn("alert raised", "kind", KindRecordingNotWorking, "visit", string(c.VisitID))
	}
	return raised, nil
}

// rule is one windowed count over the audit trail.
type rule struct {
	kind      Kind
	threshold int
	window    time.Duration
	// query returns (subject, count) rows at or above threshold ($1 since,
	// $2 threshold, $3 actions where used).
	query string
	args  []any
	what  string
}

func (e *Engine) rules() []rule {
	r := e.p.Rules
	return []rule{
		{KindFailedSigninsAccount, r.FailedSigninsAccount, r.SigninWindow,
			`SELECT actor_id, count(*) FROM audit_events WHERE action = 'auth.login' AND outcome IN ('failure', 'denied')
			 AND actor_id <> '' AND at >= $1 GROUP BY actor_id HAVING count(*) >= $2`, nil, "failed sign-ins for one account"},
		{KindFailedSigninsIP, r.FailedSigninsIP, r.SigninWindow,
			`SELECT ip, count(*) FROM audit_events WHERE action = 'auth.login' AND outcome IN ('failure', 'denied')
			 AND ip <> '' AND at >= $1 GROUP BY ip HAVING count(*) >= $2`, nil, "failed sign-ins from one address"},
		{KindBulkRecordingAccess, r.RecordingAccesses, r.RecordingWindow,
			// Distinct recordings: one playback makes many Range requests
			// (each audited) but is one recording reached.
			`SELECT actor_id, count(DISTINCT resource_id) FROM audit_events WHERE action = ANY($3) AND outcome = 'success'
			 AND actor_id <> '' AND resource_type = 'recording' AND at >= $1 GROUP BY actor_id
			 HAVING count(DISTINCT resource_id) >= $2`, []any{RecordingAccessActions},
			"recordings accessed by one actor"},
	}
}

// Evaluate runs every rule once and raises an alert for each subject over
// its threshold, at most once per subject per window.
func (e *Engine) Evaluate(ctx context.Context) ([]store.Alert, error) {
	now := e.p.Now()
	var raised []store.Alert
	for _, r := range e.rules() {
		since := now.Add(-r.window)
		args := append([]any{since, r.threshold}, r.args...)
		rows, err := e.p.Pool.Query(ctx, r.query, args...)
		if err != nil {
			return raised, fmt.Errorf("alerts: %s: %w", r.kind, err)
		}
		type hit struct {
			subject string
			n       int
		}
		hits, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (hit, error) {
			var h hit
			err := row.Scan(&h.subject, &h.n)
			return h, err
		})
		if err != nil {
			return raised, fmt.Errorf("alerts: %s: %w", r.kind, err)
		}
		for _, h := range hits {
			a, ok, err := e.raiseOnce(ctx, r.kind, h.subject,
				fmt.Sprintf("%d %s in %s", h.n, r.what, r.window), since)
			if err != nil {
				return raised, err
			}
			if ok {
				raised = append(raised, a)
			}
		}
	}
	return raised, nil
}

// raiseOnce raises an alert unless one of the same kind and subject was
// raised since since.
func (e *Engine) raiseOnce(ctx context.Context, kind Kind, subject, detail string, since time.Time) (store.Alert, bool, error) {
	var a store.Alert
	var raised bool
	err := pgx.BeginFunc(ctx, e.p.Pool, func(tx pgx.Tx) error {
		// Serialize raisers of the same kind so two processes do not both raise.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "alert:"+string(kind)); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM alerts WHERE kind = $1 AND subject = $2 AND created_at >= $3)`,
			kind, subject, since).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		var err error
		a, err = Raise(ctx, tx, kind, subject, detail, e.p.Now())
		raised = err == nil
		return err
	})
	if err != nil {
		return store.Alert{}, false, fmt.Errorf("alerts: raise %s: %w", kind, err)
	}
	if raised {
		e.log.Warn("alert raised", "kind", kind, "alert", a.ID)
	}
	return a, raised, nil
}

// Raise stores an alert now, outside any transaction (e.g. a checkpoint
// that could not be written).
func (e *Engine) Raise(ctx context.Context, kind Kind, subject, detail string) {
	if _, err := Raise(ctx, e.p.Pool, kind, subject, detail, e.p.Now()); err != nil {
		// The database may be what failed: the log is the last resort.
		e.log.Error("could not store alert", "kind", kind, "err", err)
	}
}

// Payload is the webhook body.
type Payload struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Severity  string    `json:"severity"`
	Subject   string    `json:"subject"`
	Detail    string    `json:"detail"`
	CreatedAt time.Time `json:"created_at"`
}

// Deliver sends undelivered alerts to the webhook, oldest first, and marks
// each one the webhook accepted (2xx).
func (e *Engine) Deliver(ctx context.Context) error {
	if e.p.WebhookURL == "" {
		return nil
	}
	defer e.measureDepth(ctx)
	rows, err := e.p.Pool.Query(ctx, `SELECT id::text, kind, severity, subject, detail, created_at FROM alerts
		WHERE notified_at IS NULL AND notify_attempts < 1000 ORDER BY created_at LIMIT 100`)
	if err != nil {
		return fmt.Errorf("alerts: deliver: %w", err)
	}
	pending, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payload, error) {
		var p Payload
		err := r.Scan(&p.ID, &p.Kind, &p.Severity, &p.Subject, &p.Detail, &p.CreatedAt)
		return p, err
	})
	if err != nil {
		return fmt.Errorf("alerts: deliver: %w", err)
	}
	for _, p := range pending {
		sendErr := e.post(ctx, p)
		q := `UPDATE alerts SET notify_attempts = notify_attempts + 1 WHERE id = $1`
		if sendErr == nil {
			q = `UPDATE alerts SET notify_attempts = notify_attempts + 1, notified_at = now() WHERE id = $1`
		}
		if _, err := e.p.Pool.Exec(ctx, q, p.ID); err != nil {
			return fmt.Errorf("alerts: deliver: %w", err)
		}
		if sendErr != nil {
			return sendErr // keep order: retry from this one next time
		}
	}
	return nil
}

func (e *Engine) measureDepth(ctx context.Context) {
	var n int64
	if err := e.p.Pool.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE notified_at IS NULL AND notify_attempts < 1000`).Scan(&n); err == nil {
		e.depth.Set(float64(n))
	}
}

// post sends one alert, signed as every webhook is (internal/delivery).
func (e *Engine) post(ctx context.Context, p Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	res := delivery.Post(ctx, e.p.Client, delivery.Request{URL: e.p.WebhookURL, Secret: e.p.WebhookSecret,
		Body: body, At: e.p.Now(), Headers: map[string]string{"X-OpenVisit-Alert": p.ID}})
	if !res.OK() {
		return fmt.Errorf("alerts: webhook: %w", res.Err)
	}
	return nil
}
