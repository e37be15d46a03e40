package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// The development mail outbox (migration 0008): mail kept instead of sent.
// Development only; a message holds PHI and a one-time link.

// OutboxKeep is how many messages the outbox keeps; older ones go.
const OutboxKeep = 500

// OutboxMessage is one kept email. Attachments carry their data only when
// read one by one.
type OutboxMessage struct {
	ID          string             `json:"id"`
	CreatedAt   time.Time          `json:"created_at"`
	SentBy      ids.UserID         `json:"sent_by,omitempty"`
	PatientID   string             `json:"patient_id,omitempty"`
	VisitID     ids.VisitID        `json:"visit_id,omitempty"`
	To          string             `json:"to"`
	Subject     string             `json:"subject"`
	Body        string             `json:"body,omitempty"`
	Attachments []OutboxAttachment `json:"attachments"`
}

// OutboxAttachment is a kept message's attachment.
type OutboxAttachment struct {
	N           int    `json:"n"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int    `json:"size"`
	Data        []byte `json:"-"`
}

// AddOutboxMessage keeps m (its ID and time are set here) with its
// attachments, and drops the messages beyond the newest OutboxKeep.
func AddOutboxMessage(ctx context.Context, db DBTX, m OutboxMessage) (string, error) {
	m.ID = uuid.NewString()
	_, err := db.Exec(ctx, `INSERT INTO dev_outbox (id, sent_by, patient_id, visit_id, recipient, subject, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, m.ID, nullable(string(m.SentBy)), nullable(m.PatientID), nullable(string(m.VisitID)),
		m.To, m.Subject, m.Body)
	if err != nil {
		return "", fmt.Errorf("store: outbox: %w", err)
	}
	for i, a := range m.Attachments {
		if _, err := db.Exec(ctx, `INSERT INTO dev_outbox_attachments (message_id, n, name, content_type, data)
			VALUES ($1, $2, $3, $4, $5)`, m.ID, i, a.Name, a.ContentType, a.Data); err != nil {
			return "", fmt.Errorf("store: outbox attachment: %w", err)
		}
	}
	if _, err := db.Exec(ctx, `DELETE FROM dev_outbox WHERE id IN (SELECT id FROM dev_outbox
		ORDER BY created_at DESC, id DESC OFFSET $1)`, OutboxKeep); err != nil {
		return "", fmt.Errorf("store: outbox trim: %w", err)
	}
	return m.ID, nil
}

const outboxColumns = `m.id::text, m.created_at, COALESCE(m.sent_by::text, ''), COALESCE(m.patient_id::text, ''),
	COALESCE(m.visit_id::text, ''), m.recipient, m.subject`

// scanOutbox scans outboxColumns and then extra into m.
func scanOutbox(r pgx.Row, m *OutboxMessage, extra ...any) error {
	var by, visit string
	err := r.Scan(append([]any{&m.ID, &m.CreatedAt, &by, &m.PatientID, &visit, &m.To, &m.Subject}, extra...)...)
	m.SentBy, m.VisitID = ids.UserID(by), ids.VisitID(visit)
	return notFound(err)
}

// OutboxMessages lists the newest kept messages, newest first, without
// bodies or attachment data; sentBy, when not empty, keeps only that
// user's.
func OutboxMessages(ctx context.Context, db DBTX, sentBy ids.UserID, limit int) ([]OutboxMessage, error) {
	rows, err := db.Query(ctx, `SELECT `+outboxColumns+`,
		COALESCE((SELECT json_agg(json_build_object('n', a.n, 'name', a.name, 'content_type', a.content_type,
			'size', length(a.data)) ORDER BY a.n) FROM dev_outbox_attachments a WHERE a.message_id = m.id), '[]')
		FROM dev_outbox m WHERE ($1 = '' OR m.sent_by::text = $1)
		ORDER BY m.created_at DESC, m.id DESC LIMIT $2`, string(sentBy), limit)
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxMessage, error) {
		var m OutboxMessage
		err := scanOutbox(r, &m, &m.Attachments)
		return m, err
	})
}

// OutboxMessageByID reads one kept message with its body and attachments;
// sentBy, when not empty, must be its sender (ErrNotFound otherwise).
func OutboxMessageByID(ctx context.Context, db DBTX, id string, sentBy ids.UserID) (OutboxMessage, error) {
	if !ids.Valid(id) {
		return OutboxMessage{}, ErrNotFound
	}
	var m OutboxMessage
	err := scanOutbox(db.QueryRow(ctx, `SELECT `+outboxColumns+`, m.body FROM dev_outbox m
		WHERE m.id = $1 AND ($2 = '' OR m.sent_by::text = $2)`, id, string(sentBy)), &m, &m.Body)
	if err != nil {
		return OutboxMessage{}, err
	}
	rows, err := db.Query(ctx, `SELECT n, name, content_type, length(data), data FROM dev_outbox_attachments
		WHERE message_id = $1 ORDER BY n`, id)
	if err != nil {
		return OutboxMessage{}, fmt.Errorf("store: outbox: %w", err)
	}
	m.Attachments, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxAttachment, error) {
		var a OutboxAttachment
		err := r.Scan(&a.N, &a.Name, &a.ContentType, &a.Size, &a.Data)
		return a, err
	})
	if err != nil {
		return OutboxMessage{}, fmt.Errorf("store: outbox: %w", err)
	}
	return m, nil
}
