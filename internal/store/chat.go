package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/phi"
)

// A visit's chat (migration 0020): messages to everyone in the visit, kept
// with it, their text sealed (phi.ChatBody) and never stored in plaintext.

// ChatMessage is one message of a visit's chat.
type ChatMessage struct {
	ID         string      `json:"id"`
	VisitID    ids.VisitID `json:"visit_id"`
	Seq        int64       `json:"seq"`
	SenderID   string      `json:"-"` // the sender's opaque ID (user or participant); readers get Mine
	SenderRole string      `json:"role"`
	At         time.Time   `json:"at"`
	Text       string      `json:"text"`
	Mine       bool        `json:"mine"` // set per reader
}

// SealChatText seals a message's text for the row id, before the
// transaction that adds it: sealing may read or create the table's data key
// through the pool, which must not wait behind a transaction's connection.
func SealChatText(ctx context.Context, db DBTX, id, text string) ([]byte, error) {
	sealed, err := cipherOf(db).SealString(ctx, phi.ChatBody, id, text)
	if err != nil {
		return nil, fmt.Errorf("store: chat: %w", err)
	}
	return sealed, nil
}

// LockChatVisit locks the visit's row for the rest of tx (it orders
// concurrent senders) and returns its status and patient's ID.
func LockChatVisit(ctx context.Context, tx DBTX, visit ids.VisitID) (status, patient string, err error) {
	if !ids.Valid(string(visit)) {
		return "", "", ErrNotFound
	}
	err = tx.QueryRow(ctx, `SELECT status, COALESCE(patient_id::text, '') FROM visits WHERE id = $1 FOR UPDATE`,
		string(visit)).Scan(&status, &patient)
	return status, patient, notFound(err)
}

// AddChatMessage appends m (its ID set, its text sealed by SealChatText)
// to its visit's chat with the next sequence number, and returns it with
// its number and time. The caller holds the visit's lock (LockChatVisit);
// the unique (visit_id, seq) catches one that does not.
func AddChatMessage(ctx context.Context, db DBTX, m ChatMessage, sealed []byte) (ChatMessage, error) {
	err := db.QueryRow(ctx, `INSERT INTO chat_messages (id, visit_id, seq, sender_id, sender_role, created_at, body_ct)
		VALUES ($1, $2, (SELECT COALESCE(max(seq), 0) + 1 FROM chat_messages WHERE visit_id = $2), $3, $4, $5, $6)
		RETURNING seq, created_at`, m.ID, string(m.VisitID), m.SenderID, m.SenderRole, m.At, sealed).Scan(&m.Seq, &m.At)
	if err != nil {
		return ChatMessage{}, fmt.Errorf("store: chat: %w", err)
	}
	return m, nil
}

// ChatMessages lists visit's messages after sequence number after, in
// order, at most limit of them, with their text opened.
func ChatMessages(ctx context.Context, db DBTX, visit ids.VisitID, after int64, limit int) ([]ChatMessage, error) {
	if !ids.Valid(string(visit)) {
		return nil, ErrNotFound
	}
	rows, err := db.Query(ctx, `SELECT id::text, visit_id::text, seq, sender_id, sender_role, created_at, body_ct
		FROM chat_messages WHERE visit_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, string(visit), after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: chat: %w", err)
	}
	c := cipherOf(db)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChatMessage, error) {
		var m ChatMessage
		var visit string
		var sealed []byte
		if err := r.Scan(&m.ID, &visit, &m.Seq, &m.SenderID, &m.SenderRole, &m.At, &sealed); err != nil {
			return m, err
		}
		m.VisitID = ids.VisitID(visit)
		var err error
		if m.Text, err = c.OpenString(ctx, phi.ChatBody, m.ID, sealed); err != nil {
			return m, fmt.Errorf("store: chat message %s: %w", m.ID, err)
		}
		return m, nil
	})
}
