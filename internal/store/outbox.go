package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/phi"
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
// attachments, and drops the messages beyond the newest OutboxKeep. The
// recipient, subject, body and attachment data are sealed (phi.Outbox*).
func AddOutboxMessage(ctx context.Context, db DBTX, m OutboxMessage) (string, error) {
	m.ID = uuid.NewString()
	c := cipherOf(db)
	var sealed [3][]byte
	for i, f := range []struct {
		col phi.Column
		v   string
	}{{phi.OutboxRecipient, m.To}, {phi.OutboxSubject, m.Subject}, {phi.OutboxBody, m.Body}} {
		var err error
		if sealed[i], err = c.SealString(ctx, f.col, m.ID, f.v); err != nil {
			return "", fmt.Errorf("store: outbox: %w", err)
		}
	}
	_, err := db.Exec(ctx, `INSERT INTO dev_outbox (id, sent_by, patient_id, visit_id, recipient_ct, subject_ct, body_ct)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, m.ID, nullable(string(m.SentBy)), nullable(m.PatientID), nullable(string(m.VisitID)),
		sealed[0], sealed[1], sealed[2])
	if err != nil {
		return "", fmt.Errorf("store: outbox: %w", err)
	}
	for i, a := range m.Attachments {
		data, err := c.Seal(ctx, phi.OutboxAttachment, attachmentRow(m.ID, i), a.Data)
		if err != nil {
			return "", fmt.Errorf("store: outbox attachment: %w", err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO dev_outbox_attachments (message_id, n, name, content_type, data_ct)
			VALUES ($1, $2, $3, $4, $5)`, m.ID, i, a.Name, a.ContentType, data); err != nil {
			return "", fmt.Errorf("store: outbox attachment: %w", err)
		}
	}
	if _, err := db.Exec(ctx, `DELETE FROM dev_outbox WHERE id IN (SELECT id FROM dev_outbox
		ORDER BY created_at DESC, id DESC OFFSET $1)`, OutboxKeep); err != nil {
		return "", fmt.Errorf("store: outbox trim: %w", err)
	}
	return m.ID, nil
}

// attachmentRow is the row an attachment's ciphertext is bound to.
func attachmentRow(message string, n int) string { return message + "/" + strconv.Itoa(n) }

const outboxColumns = `m.id::text, m.created_at, COALESCE(m.sent_by::text, ''), COALESCE(m.patient_id::text, ''),
	COALESCE(m.visit_id::text, ''), m.recipient_ct, m.recipient, m.subject_ct, m.subject`

// scanOutbox scans outboxColumns and then extra into m, opening the
// recipient and subject.
func scanOutbox(ctx context.Context, db DBTX, r pgx.Row, m *OutboxMessage, extra ...any) error {
	var by, visit string
	var toCT, subjectCT []byte
	var to, subject *string
	err := r.Scan(append([]any{&m.ID, &m.CreatedAt, &by, &m.PatientID, &visit, &toCT, &to, &subjectCT, &subject}, extra...)...)
	if err != nil {
		return notFound(err)
	}
	m.SentBy, m.VisitID = ids.UserID(by), ids.VisitID(visit)
	c := cipherOf(db)
	if m.To, err = c.Read(ctx, phi.OutboxRecipient, m.ID, toCT, to); err != nil {
		return fmt.Errorf("store: outbox %s: %w", m.ID, err)
	}
	if m.Subject, err = c.Read(ctx, phi.OutboxSubject, m.ID, subjectCT, subject); err != nil {
		return fmt.Errorf("store: outbox %s: %w", m.ID, err)
	}
	return nil
}

// OutboxMessages lists the newest kept messages, newest first, without
// bodies or attachment data; sentBy, when not empty, keeps only that
// user's.
func OutboxMessages(ctx context.Context, db DBTX, sentBy ids.UserID, limit int) ([]OutboxMessage, error) {
	rows, err := db.Query(ctx, `SELECT `+outboxColumns+`,
		COALESCE((SELECT json_agg(json_build_object('n', a.n, 'name', a.name, 'content_type', a.content_type,
			'size', COALESCE(length(a.data), length(a.data_ct) - `+strconv.Itoa(phi.Overhead)+`)) ORDER BY a.n)
			FROM dev_outbox_attachments a WHERE a.message_id = m.id), '[]')
		FROM dev_outbox m WHERE ($1 = '' OR m.sent_by::text = $1)
		ORDER BY m.created_at DESC, m.id DESC LIMIT $2`, string(sentBy), limit)
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxMessage, error) {
		var m OutboxMessage
		err := scanOutbox(ctx, db, r, &m, &m.Attachments)
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
	var bodyCT []byte
	var body *string
	err := scanOutbox(ctx, db, db.QueryRow(ctx, `SELECT `+outboxColumns+`, m.body_ct, m.body FROM dev_outbox m
		WHERE m.id = $1 AND ($2 = '' OR m.sent_by::text = $2)`, id, string(sentBy)), &m, &bodyCT, &body)
	if err != nil {
		return OutboxMessage{}, err
	}
	c := cipherOf(db)
	if m.Body, err = c.Read(ctx, phi.OutboxBody, m.ID, bodyCT, body); err != nil {
		return OutboxMessage{}, fmt.Errorf("store: outbox %s: %w", m.ID, err)
	}
	rows, err := db.Query(ctx, `SELECT n, name, content_type, data_ct, data FROM dev_outbox_attachments
		WHERE message_id = $1 ORDER BY n`, id)
	if err != nil {
		return OutboxMessage{}, fmt.Errorf("store: outbox: %w", err)
	}
	m.Attachments, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxAttachment, error) {
		var a OutboxAttachment
		var sealed []byte
		if err := r.Scan(&a.N, &a.Name, &a.ContentType, &sealed, &a.Data); err != nil || sealed == nil {
			a.Size = len(a.Data)
			return a, err
		}
		a.Data, err = c.Open(ctx, phi.OutboxAttachment, attachmentRow(m.ID, a.N), sealed)
		a.Size = len(a.Data)
		return a, err
	})
	if err != nil {
		return OutboxMessage{}, fmt.Errorf("store: outbox: %w", err)
	}
	return m, nil
}
