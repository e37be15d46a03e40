package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// WebhookSubscription is a receiver of visit events (internal/webhooks).
type WebhookSubscription struct {
	ID            string     `json:"id"`
	URL           string     `json:"url"`
	SecretSealed  []byte     `json:"-"`
	Kinds         []string   `json:"kinds"`
	MayReceivePHI bool       `json:"may_receive_phi"`
	CreatedBy     string     `json:"created_by"`
	CreatedAt     time.Time  `json:"created_at"`
	DisabledAt    *time.Time `json:"disabled_at,omitempty"`
}

const subscriptionColumns = `id::text, url, secret_enc, kinds, may_receive_phi, created_by, created_at, disabled_at`

func scanSubscription(r pgx.Row) (WebhookSubscription, error) {
	var s WebhookSubscription
	err := r.Scan(&s.ID, &s.URL, &s.SecretSealed, &s.Kinds, &s.MayReceivePHI, &s.CreatedBy, &s.CreatedAt, &s.DisabledAt)
	return s, err
}

// CreateWebhookSubscription stores s (its ID chosen by the caller, which
// sealed the secret bound to it).
func CreateWebhookSubscription(ctx context.Context, db DBTX, s WebhookSubscription) error {
	_, err := db.Exec(ctx, `INSERT INTO webhook_subscriptions (id, url, secret_enc, kinds, may_receive_phi, created_by)
		VALUES ($1, $2, $3, $4, $5, $6)`, s.ID, s.URL, s.SecretSealed, s.Kinds, s.MayReceivePHI, s.CreatedBy)
	if err != nil {
		return fmt.Errorf("store: create webhook subscription: %w", err)
	}
	return nil
}

// WebhookSubscriptions lists every subscription, newest first.
func WebhookSubscriptions(ctx context.Context, db DBTX) ([]WebhookSubscription, error) {
	rows, err := db.Query(ctx, `SELECT `+subscriptionColumns+` FROM webhook_subscriptions ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("store: webhook subscriptions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookSubscription, error) { return scanSubscription(r) })
	if err != nil {
		return nil, fmt.Errorf("store: webhook subscriptions: %w", err)
	}
	return out, nil
}

// DisableWebhookSubscription stops events to subscription id; its pending
// deliveries are failed. ErrNotFound when it does not exist or is disabled.
func DisableWebhookSubscription(ctx context.Context, db DBTX, id string, now time.Time) error {
	tag, err := db.Exec(ctx, `UPDATE webhook_subscriptions SET disabled_at = $2 WHERE id::text = $1 AND disabled_at IS NULL`, id, now)
	if err != nil {
		return fmt.Errorf("store: disable webhook subscription: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	_, err = db.Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed', finished_at = $2
		WHERE subscription_id::text = $1 AND status = 'pending'`, id, now)
	if err != nil {
		return fmt.Errorf("store: disable webhook subscription: %w", err)
	}
	return nil
}

// WebhookDelivery is one event for one subscription, with what is needed
// to send it.
type WebhookDelivery struct {
	ID            int64               `json:"id"`
	EventID       string              `json:"event_id"`
	Kind          string              `json:"kind"`
	VisitID       string              `json:"visit_id"`
	SubjectID     string              `json:"subject_id,omitempty"`
	OccurredAt    time.Time           `json:"occurred_at"`
	Status        string              `json:"status"`
	Attempts      int                 `json:"attempts"`
	NextAttemptAt *time.Time          `json:"next_attempt_at,omitempty"`
	Subscription  WebhookSubscription `json:"-"`
}

// ClaimWebhookDelivery locks the oldest due delivery that is the first
// pending one of its subscription (so each receiver gets its events in
// order), skipping rows another deliverer holds; ErrNotFound when none is
// due. Call it in a transaction and record the attempt in the same one.
func ClaimWebhookDelivery(ctx context.Context, tx pgx.Tx, now time.Time) (WebhookDelivery, error) {
	var d WebhookDelivery
	row := tx.QueryRow(ctx, `SELECT d.id, d.event_id::text, d.kind, d.visit_id::text, d.subject_id, d.occurred_at,
			d.status, d.attempts, d.next_attempt_at, d.subscription_id::text
		FROM webhook_deliveries d
		WHERE d.status = 'pending' AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= $1)
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
			WHERE e.subscription_id = d.subscription_id AND e.status = 'pending' AND e.id < d.id)
		ORDER BY d.id LIMIT 1 FOR UPDATE SKIP LOCKED`, now)
	err := row.Scan(&d.ID, &d.EventID, &d.Kind, &d.VisitID, &d.SubjectID, &d.OccurredAt,
		&d.Status, &d.Attempts, &d.NextAttemptAt, &d.Subscription.ID)
	if err != nil {
		return d, fmt.Errorf("store: claim webhook delivery: %w", notFound(err))
	}
	d.Subscription, err = scanSubscription(tx.QueryRow(ctx,
		`SELECT `+subscriptionColumns+` FROM webhook_subscriptions WHERE id::text = $1`, d.Subscription.ID))
	if err != nil {
		return d, fmt.Errorf("store: claim webhook delivery: %w", err)
	}
	return d, nil
}

// WebhookAttempt is one line of the delivery log.
type WebhookAttempt struct {
	DeliveryID int64     `json:"delivery_id"`
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code"`
	ErrorClass string    `json:"error_class,omitempty"`
}

// RecordWebhookAttempt logs attempt a of delivery id and sets its state:
// delivered (class ""), failed (final), or pending until next.
func RecordWebhookAttempt(ctx context.Context, tx pgx.Tx, a WebhookAttempt, final bool, next time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error_class)
		VALUES ($1, $2, $3, $4, $5)`, a.DeliveryID, a.Attempt, a.At, a.StatusCode, a.ErrorClass); err != nil {
		return fmt.Errorf("store: webhook attempt: %w", err)
	}
	q := `UPDATE webhook_deliveries SET attempts = $2, next_attempt_at = $3 WHERE id = $1`
	args := []any{a.DeliveryID, a.Attempt, next}
	switch {
	case a.ErrorClass == "":
		q, args = `UPDATE webhook_deliveries SET attempts = $2, status = 'delivered', finished_at = $3 WHERE id = $1`,
			[]any{a.DeliveryID, a.Attempt, a.At}
	case final:
		q, args = `UPDATE webhook_deliveries SET attempts = $2, status = 'failed', finished_at = $3 WHERE id = $1`,
			[]any{a.DeliveryID, a.Attempt, a.At}
	}
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("store: webhook attempt: %w", err)
	}
	return nil
}

// WebhookLogEntry is a delivery with its attempts, for admins.
type WebhookLogEntry struct {
	WebhookDelivery
	SubscriptionID string           `json:"subscription_id"`
	AttemptLog     []WebhookAttempt `json:"attempt_log"`
}

// WebhookLog returns the latest limit deliveries (of subscription sub, or
// all when sub is ""), newest first, each with its attempts.
func WebhookLog(ctx context.Context, db DBTX, sub string, limit int) ([]WebhookLogEntry, error) {
	rows, err := db.Query(ctx, `SELECT d.id, d.event_id::text, d.kind, d.visit_id::text, d.subject_id, d.occurred_at,
			d.status, d.attempts, d.next_attempt_at, d.subscription_id::text,
			COALESCE((SELECT json_agg(json_build_object('delivery_id', a.delivery_id, 'attempt', a.attempt, 'at', a.at,
				'status_code', a.status_code, 'error_class', a.error_class) ORDER BY a.attempt)
				FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]')
		FROM webhook_deliveries d WHERE ($1 = '' OR d.subscription_id::text = $1)
		ORDER BY d.id DESC LIMIT $2`, sub, limit)
	if err != nil {
		return nil, fmt.Errorf("store: webhook log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookLogEntry, error) {
		var e WebhookLogEntry
		err := r.Scan(&e.ID, &e.EventID, &e.Kind, &e.VisitID, &e.SubjectID, &e.OccurredAt,
			&e.Status, &e.Attempts, &e.NextAttemptAt, &e.SubscriptionID, &e.AttemptLog)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: webhook log: %w", err)
	}
	return out, nil
}

// WebhookOutboxDepth counts pending deliveries (a metric).
func WebhookOutboxDepth(ctx context.Context, db DBTX) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: webhook outbox depth: %w", err)
	}
	return n, nil
}
