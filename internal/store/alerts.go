package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// Alert is something an admin must look at.
type Alert struct {
	ID             string     `json:"id"`
	Kind           string     `json:"kind"`
	Severity       string     `json:"severity"`
	Subject        string     `json:"subject"` // an opaque ID
	Detail         string     `json:"detail"`
	CreatedAt      time.Time  `json:"created_at"`
	AcknowledgedBy *string    `json:"acknowledged_by,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
}

// RaiseAlert stores a new alert.
func RaiseAlert(ctx context.Context, db DBTX, kind, severity, subject, detail string, now time.Time) (Alert, error) {
	a := Alert{ID: uuid.NewString(), Kind: kind, Severity: severity, Subject: subject, Detail: detail, CreatedAt: now}
	_, err := db.Exec(ctx, `INSERT INTO alerts (id, kind, severity, subject, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		a.ID, kind, severity, subject, detail, now)
	if err != nil {
		return Alert{}, fmt.Errorf("store: raise alert: %w", err)
	}
	return a, nil
}

// ListAlerts returns alerts, open first, newest first.
func ListAlerts(ctx context.Context, db DBTX, limit int) ([]Alert, error) {
	rows, err := db.Query(ctx, `SELECT id::text, kind, severity, subject, detail, created_at, acknowledged_by::text, acknowledged_at
		FROM alerts ORDER BY acknowledged_at IS NOT NULL, created_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list alerts: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Alert, error) {
		var a Alert
		err := r.Scan(&a.ID, &a.Kind, &a.Severity, &a.Subject, &a.Detail, &a.CreatedAt, &a.AcknowledgedBy, &a.AcknowledgedAt)
		return a, err
	})
}

// OpenAlertSubject locks an unacknowledged alert and returns its subject.
func OpenAlertSubject(ctx context.Context, db DBTX, id string) (string, error) {
	if !ids.Valid(id) {
		return "", ErrNotFound
	}
	var subject string
	err := db.QueryRow(ctx, `SELECT subject FROM alerts WHERE id = $1 AND acknowledged_at IS NULL FOR UPDATE`, id).Scan(&subject)
	return subject, notFound(err)
}

// AcknowledgeAlert marks an alert handled, by admin (empty: by the
// operator on the server's command line).
func AcknowledgeAlert(ctx context.Context, db DBTX, id string, admin ids.UserID, now time.Time) error {
	if !ids.Valid(id) {
		return ErrNotFound
	}
	tag, err := db.Exec(ctx, `UPDATE alerts SET acknowledged_by = NULLIF($2, '')::uuid, acknowledged_at = $3 WHERE id = $1 AND acknowledged_at IS NULL`,
		id, string(admin), now)
	if err != nil {
		return fmt.Errorf("store: acknowledge alert: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
