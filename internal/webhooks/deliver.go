package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openvisit/openvisit/internal/delivery"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
)

// Payload is the body of a webhook: what happened, to which visit, by
// opaque IDs. PHI is set only for a subscription granted it.
type Payload struct {
	ID         string    `json:"id"` // the event's ID: the same for every subscription
	Kind       string    `json:"kind"`
	OccurredAt time.Time `json:"occurred_at"`
	VisitID    string    `json:"visit_id"`
	Status     string    `json:"visit_status"`
	ProviderID string    `json:"provider_id,omitempty"`
	PatientID  string    `json:"patient_id,omitempty"`
	// ParticipantID (patient.waiting) or RecordingID (recording.available).
	ParticipantID string `json:"participant_id,omitempty"`
	RecordingID   string `json:"recording_id,omitempty"`
	PHI           *PHI   `json:"phi,omitempty"`
}

// PHI is what a subscription granted PHI also receives.
type PHI struct {
	PatientName    string     `json:"patient_name,omitempty"`
	ScheduledStart *time.Time `json:"scheduled_start,omitempty"`
	ScheduledEnd   *time.Time `json:"scheduled_end,omitempty"`
	Reason         string     `json:"reason,omitempty"`
}

// DeliverParams configure a Deliverer.
type DeliverParams struct {
	DB     *store.DB
	Sealer *keys.Sealer
	Client *http.Client
	// Backoff is the retry schedule (zero: delivery.DefaultBackoff).
	Backoff delivery.Backoff
	// Now and Rand are the clock and the jitter's source (tests inject them).
	Now    func() time.Time
	Rand   func() float64
	Every  time.Duration
	Logger *slog.Logger
}

// Deliverer sends due deliveries. Lifecycle: NewDeliverer, then Run in one
// goroutine until its context ends; DeliverDue may be called directly.
type Deliverer struct {
	p        DeliverParams
	log      *slog.Logger
	attempts *prometheus.CounterVec
	depth    prometheus.Gauge
}

// NewDeliverer returns a Deliverer.
func NewDeliverer(p DeliverParams) *Deliverer {
	if p.Backoff == (delivery.Backoff{}) {
		p.Backoff = delivery.DefaultBackoff
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Client == nil {
		p.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if p.Every <= 0 {
		p.Every = 2 * time.Second
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	return &Deliverer{p: p, log: p.Logger.With("component", "webhooks"),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openvisit_webhook_attempts_total",
			Help: "Webhook delivery attempts by outcome (delivered, retry, failed).",
		}, []string{"outcome"}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openvisit_webhook_outbox_depth",
			Help: "Webhook deliveries pending (due or waiting for a retry), as of the last delivery round.",
		}),
	}
}

// Collectors are the deliverer's metrics, for the process's registry.
func (d *Deliverer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{d.attempts, d.depth}
}

// Run delivers what is due every p.Every until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTicker(d.p.Every)
	defer t.Stop()
	for {
		if _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("webhook delivery", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverDue makes one attempt at each due delivery (the first pending
// one of each subscription, repeatedly) and returns how many attempts it
// made.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	n := 0
	for ctx.Err() == nil {
		did, err := d.attemptOne(ctx)
		if err != nil || !did {
			d.measureDepth(ctx)
			return n, err
		}
		n++
	}
	return n, ctx.Err()
}

// attemptOne claims one due delivery, posts it and records the attempt,
// holding the row's lock meanwhile so no other process sends it too.
func (d *Deliverer) attemptOne(ctx context.Context) (bool, error) {
	did := false
	err := d.p.DB.Tx(ctx, func(tx pgx.Tx) error {
		now := d.p.Now()
		dl, err := store.ClaimWebhookDelivery(ctx, tx, now)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		did = true
		res := d.post(ctx, tx, dl, now)
		a := store.WebhookAttempt{DeliveryID: dl.ID, Attempt: dl.Attempts + 1, At: now,
			StatusCode: res.StatusCode, ErrorClass: res.Class}
		final := !res.OK() && d.p.Backoff.Exhausted(a.Attempt)
		next := now.Add(d.p.Backoff.Wait(a.Attempt, d.p.Rand))
		if !res.OK() {
			d.log.Warn("webhook attempt failed", "subscription", dl.Subscription.ID, "delivery", dl.ID,
				"attempt", a.Attempt, "class", res.Class, "status", res.StatusCode, "final", final)
		}
		d.attempts.WithLabelValues(outcome(res, final)).Inc()
		return store.RecordWebhookAttempt(ctx, tx, a, final, next)
	})
	if err != nil {
		return did, fmt.Errorf("webhooks: deliver: %w", err)
	}
	return did, nil
}

func (d *Deliverer) measureDepth(ctx context.Context) {
	if n, err := store.WebhookOutboxDepth(ctx, d.p.DB); err == nil {
		d.depth.Set(float64(n))
	}
}

func outcome(r delivery.Result, final bool) string {
	switch {
	case r.OK():
		return "delivered"
	case final:
		return "failed"
	}
	return "retry"
}

// post builds dl's payload and sends it; a payload that cannot be built
// (the subscription's secret does not open) is an attempt of class
// "other", retried like any failure.
func (d *Deliverer) post(ctx context.Context, tx pgx.Tx, dl store.WebhookDelivery, now time.Time) delivery.Result {
	key, err := secret(d.p.Sealer, dl.Subscription)
	if err != nil {
		return delivery.Result{Class: delivery.ClassOther, Err: err}
	}
	p, err := d.payload(ctx, tx, dl)
	if err != nil {
		return delivery.Result{Class: delivery.ClassOther, Err: err}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return delivery.Result{Class: delivery.ClassOther, Err: err}
	}
	return delivery.Post(ctx, d.p.Client, delivery.Request{URL: dl.Subscription.URL, Secret: key, Body: body, At: now,
		Headers: map[string]string{"X-OpenVisit-Event": dl.EventID, "X-OpenVisit-Event-Kind": dl.Kind}})
}

// payload reads the visit as it is now; the kind says what happened.
func (d *Deliverer) payload(ctx context.Context, tx pgx.Tx, dl store.WebhookDelivery) (Payload, error) {
	p := Payload{ID: dl.EventID, Kind: dl.Kind, OccurredAt: dl.OccurredAt.UTC(), VisitID: dl.VisitID}
	switch dl.Kind {
	case KindPatientWaiting:
		p.ParticipantID = dl.SubjectID
	case KindRecordingAvailable:
		p.RecordingID = dl.SubjectID
	}
	v, err := store.ScheduledVisitByID(ctx, tx, ids.VisitID(dl.VisitID), false)
	if err != nil {
		return p, err
	}
	p.Status, p.ProviderID, p.PatientID = v.Status, string(v.ProviderID), v.PatientID
	if dl.Subscription.MayReceivePHI {
		p.PHI = &PHI{PatientName: v.PatientName, ScheduledStart: v.ScheduledStart, ScheduledEnd: v.ScheduledEnd, Reason: v.Reason}
	}
	return p, nil
}
