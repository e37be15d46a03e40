// Package outbox is the development mail outbox: mail kept in PostgreSQL
// (dev_outbox, migration 0008) instead of sent, so that `make run` shows
// the real invite emails and their calendar files on the /outbox page.
// DEVELOPMENT ONLY: the messages hold PHI and one-time links; production
// has no outbox at all. A provider reads the mail they sent, an admin
// everyone's; every read is audited before any of it leaves, naming each
// patient the mail was about (patients.RecordShown).
package outbox

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/patients"
	"github.com/openvisit/openvisit/internal/store"
)

// ListLimit is how many of the newest messages a list shows.
const ListLimit = 100

// Box is the outbox on a database. It holds no state of its own.
type Box struct{ db *store.DB }

// New returns the outbox kept through db.
func New(db *store.DB) *Box { return &Box{db: db} }

// Keep stores m (kept, not sent).
func (b *Box) Keep(ctx context.Context, m store.OutboxMessage) error {
	return b.db.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := store.AddOutboxMessage(ctx, tx, m); err != nil {
			return fmt.Errorf("outbox: send: %w", err)
		}
		return nil
	})
}

// List returns the newest messages (recipients and subjects) reader may
// read: the mail reader sent, or everyone's when reader is "" (an admin). The recipients are patients' addresses: one entry of base per
// patient shown, or base alone for a list that shows none, recorded before
// the list is returned.
func (b *Box) List(ctx context.Context, reader ids.UserID, base audit.Event) ([]store.OutboxMessage, error) {
	list, err := store.OutboxMessages(ctx, b.db, reader, ListLimit)
	if err != nil {
		return nil, err
	}
	return patients.ShownList(ctx, b.db.Audit(), base, list, func(m store.OutboxMessage) string { return m.PatientID }, patients.NoneRecorded)
}

// Message reads message id, reader's own (store.ErrNotFound otherwise),
// recording ev, named for its patient, before it is returned.
func (b *Box) Message(ctx context.Context, id string, reader ids.UserID, ev audit.Event) (store.OutboxMessage, error) {
	m, err := store.OutboxMessageByID(ctx, b.db, id, reader)
	if err != nil {
		return m, err
	}
	ev.ResourceID, ev.Reason = m.ID, "read"
	if err := b.record(ctx, m, ev); err != nil {
		return store.OutboxMessage{}, err
	}
	return m, nil
}

// Attachment reads attachment n of message id (the calendar file),
// reader's own, recording ev before it is returned.
func (b *Box) Attachment(ctx context.Context, id, n string, reader ids.UserID, ev audit.Event) (store.OutboxAttachment, error) {
	m, err := store.OutboxMessageByID(ctx, b.db, id, reader)
	if err != nil {
		return store.OutboxAttachment{}, err
	}
	for _, a := range m.Attachments {
		if n == strconv.Itoa(a.N) {
			ev.ResourceID, ev.Reason = m.ID, "attachment "+a.Name
			if err := b.record(ctx, m, ev); err != nil {
				return store.OutboxAttachment{}, err
			}
			return a, nil
		}
	}
	return store.OutboxAttachment{}, store.ErrNotFound
}

func (b *Box) record(ctx context.Context, m store.OutboxMessage, ev audit.Event) error {
	ev.PatientID, ev.VisitID = m.PatientID, string(m.VisitID)
	if err := b.db.Audit().Append(ctx, ev); err != nil {
		return fmt.Errorf("%w: %w", patients.ErrNotRecorded, err)
	}
	return nil
}
