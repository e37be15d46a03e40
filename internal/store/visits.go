package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// Visit is a scheduled or held video visit.
type Visit struct {
	ID             ids.VisitID `json:"id"`
	Status         string      `json:"status"`
	ProviderID     ids.UserID  `json:"provider_id,omitempty"`
	ScheduledStart *time.Time  `json:"scheduled_start,omitempty"`
	ScheduledEnd   *time.Time  `json:"scheduled_end,omitempty"`
	NodeID         ids.NodeID  `json:"-"`
	CreatedAt      time.Time   `json:"created_at"`
}

const visitColumns = `id::text, status, COALESCE(provider_id::text, ''), scheduled_start, scheduled_end, COALESCE(sfu_node_id, ''), created_at`

func scanVisit(r pgx.Row) (Visit, error) {
	var v Visit
	var id, prov, node string
	err := r.Scan(&id, &v.Status, &prov, &v.ScheduledStart, &v.ScheduledEnd, &node, &v.CreatedAt)
	v.ID, v.ProviderID, v.NodeID = ids.VisitID(id), ids.UserID(prov), ids.NodeID(node)
	return v, notFound(err)
}

// VisitByID finds a visit.
func VisitByID(ctx context.Context, db DBTX, id ids.VisitID) (Visit, error) {
	if !ids.Valid(string(id)) {
		return Visit{}, ErrNotFound
	}
	return scanVisit(db.QueryRow(ctx, `SELECT `+visitColumns+` FROM visits WHERE id = $1`, string(id)))
}

// VisitsOfProvider lists a provider's visits, newest first.
func VisitsOfProvider(ctx context.Context, db DBTX, provider ids.UserID, limit int) ([]Visit, error) {
	rows, err := db.Query(ctx, `SELECT `+visitColumns+` FROM visits WHERE provider_id = $1
		ORDER BY COALESCE(scheduled_start, created_at) DESC LIMIT $2`, string(provider), limit)
	if err != nil {
		return nil, fmt.Errorf("store: visits: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Visit, error) { return scanVisit(r) })
}

// CreateVisit inserts a visit for provider on node (no patient yet: the
// scheduling work adds patients).
func CreateVisit(ctx context.Context, db DBTX, id ids.VisitID, provider ids.UserID, node ids.NodeID, start, end *time.Time) error {
	_, err := db.Exec(ctx, `INSERT INTO visits (id, provider_id, sfu_node_id, scheduled_start, scheduled_end) VALUES ($1, $2, $3, $4, $5)`,
		string(id), nullable(string(provider)), nullable(string(node)), start, end)
	if err != nil {
		return fmt.Errorf("store: create visit: %w", err)
	}
	return nil
}

// VisitRelation reports whether user is the provider of visit or one of its
// guest providers (visit_staff), and whether
// they hold an unexpired break-glass grant for it.
func VisitRelation(ctx context.Context, db DBTX, user ids.UserID, visit ids.VisitID, now time.Time) (member, breakGlass bool, err error) {
	if !ids.Valid(string(visit)) || !ids.Valid(string(user)) {
		return false, false, nil
	}
	err = db.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM visits WHERE id = $1 AND provider_id = $2)
				OR EXISTS (SELECT 1 FROM visit_staff WHERE visit_id = $1 AND user_id = $2),
			EXISTS (SELECT 1 FROM break_glass WHERE visit_id = $1 AND user_id = $2 AND expires_at > $3)`,
		string(visit), string(user), now).Scan(&member, &breakGlass)
	if err != nil {
		return false, false, fmt.Errorf("store: visit relation: %w", err)
	}
	return member, breakGlass, nil
}

// ProviderParticipant returns (creating it on first use) the participant
// that represents the visit's provider user in the room.
func ProviderParticipant(ctx context.Context, db DBTX, visit ids.VisitID, user ids.UserID, newID ids.ParticipantID) (ids.ParticipantID, error) {
	var pid string
	err := db.QueryRow(ctx, `SELECT id::text FROM participants WHERE visit_id = $1 AND user_id = $2 AND role = 'provider' LIMIT 1`,
		string(visit), string(user)).Scan(&pid)
	if err == nil {
		return ids.ParticipantID(pid), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("store: provider participant: %w", err)
	}
	_, err = db.Exec(ctx, `INSERT INTO participants (id, visit_id, role, subject, user_id) VALUES ($1, $2, 'provider', $3, $4)`,
		string(newID), string(visit), string(user), string(user))
	if err != nil {
		return "", fmt.Errorf("store: provider participant: %w", err)
	}
	return newID, nil
}

// NodeURL returns a media node's WebSocket URL.
func NodeURL(ctx context.Context, db DBTX, node ids.NodeID) (string, error) {
	var u string
	err := db.QueryRow(ctx, `SELECT url FROM sfu_nodes WHERE id = $1`, string(node)).Scan(&u)
	return u, notFound(err)
}

// NodeRelayURLs returns the TURN relay URLs node registered (none when it
// runs no relay).
func NodeRelayURLs(ctx context.Context, db DBTX, node ids.NodeID) ([]string, error) {
	var urls []string
	err := db.QueryRow(ctx, `SELECT relay_urls FROM sfu_nodes WHERE id = $1`, string(node)).Scan(&urls)
	return urls, notFound(err)
}

// VisitChannel is the PostgreSQL channel visit change notices go to: every
// control-plane process LISTENs and re-reads the visit (signaling/events.go).
const VisitChannel = "openvisit_visit"

// NotifyVisit queues a change notice for visit v; it is delivered when db's
// transaction commits and dropped if it rolls back.
func NotifyVisit(ctx context.Context, db DBTX, v ids.VisitID) error {
	if _, err := db.Exec(ctx, `SELECT pg_notify($1, $2)`, VisitChannel, string(v)); err != nil {
		return fmt.Errorf("store: notify visit: %w", err)
	}
	return nil
}

// LeaveAll marks everyone still waiting or admitted in visit as left.
func LeaveAll(ctx context.Context, db DBTX, visit ids.VisitID, now time.Time) error {
	_, err := db.Exec(ctx, `UPDATE participants SET state = 'left', left_at = COALESCE(left_at, $2)
		WHERE visit_id = $1 AND state IN ('waiting', 'admitted')`, string(visit), now)
	if err != nil {
		return fmt.Errorf("store: leave all: %w", err)
	}
	return nil
}

// LockVisit locks visit v's row for the rest of tx, serialising changes of
// one visit (its recording switch and consent). A missing visit locks
// nothing and is no error: the change that follows finds it missing.
func LockVisit(ctx context.Context, tx DBTX, v ids.VisitID) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM visits WHERE id = $1 FOR UPDATE`, string(v)); err != nil {
		return fmt.Errorf("store: lock visit: %w", err)
	}
	return nil
}

// MarkPlaced records that visit v was placed on a node now, so that the
// placement counts as load until the node's heartbeats show the call.
func MarkPlaced(ctx context.Context, db DBTX, v ids.VisitID) error {
	if _, err := db.Exec(ctx, `UPDATE visits SET placed_at = now() WHERE id = $1`, string(v)); err != nil {
		return fmt.Errorf("store: mark placed: %w", err)
	}
	return nil
}

// LeaveVisit records that a participant left visit v's call at now: a
// patient participant (by ID) who was admitted goes back through the
// waiting room to return; a provider (by user) is only marked.
func LeaveVisit(ctx context.Context, db DBTX, v ids.VisitID, patient ids.ParticipantID, provider ids.UserID, now time.Time) error {
	q := `UPDATE participants SET left_at = $3, state = CASE WHEN state = 'admitted' THEN 'left' ELSE state END
		WHERE visit_id = $1 AND id = $2`
	arg := string(patient)
	if provider != "" {
		q = `UPDATE participants SET left_at = $3 WHERE visit_id = $1 AND user_id = $2 AND role = 'provider'`
		arg = string(provider)
	}
	if _, err := db.Exec(ctx, q, string(v), arg, now); err != nil {
		return fmt.Errorf("store: leave visit: %w", err)
	}
	return nil
}

// ListenVisits listens for visit change notices on a connection of its own
// until ctx ends or the connection fails (the error says which): ready
// runs once listening has begun, notice for each notice about a visit.
func (db *DB) ListenVisits(ctx context.Context, ready func(), notice func(ids.VisitID)) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection carries LISTEN state: never return it to the pool.
	pc := conn.Hijack()
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{VisitChannel}.Sanitize()); err != nil {
		return err
	}
	ready()
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if ids.Valid(n.Payload) {
			notice(ids.VisitID(n.Payload))
		}
	}
}
