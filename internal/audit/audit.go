// Package audit appends entries to the append-only audit trail. Callers
// append before they grant access: an error from Append means the access
// must be refused.
//
// Entries hold opaque IDs only — never names, dates of birth, tokens or SDP.
package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Outcome is how an audited action ended.
type Outcome string

const (
	Success Outcome = "success"
	Failure Outcome = "failure"
	Denied  Outcome = "denied"
)

// Actions recorded by the foundation. Later packages add their own; keep
// them short, dotted and stable: reports and alerts match on them.
const (
	ActionDemoLinkRedeem = "demo.link.redeem"
	ActionJoinTokenMint  = "join_token.mint"
	ActionVisitCreate    = "visit.create"
)

// Field length limits keep one entry bounded whatever a client sends.
const (
	maxIDLen        = 128
	maxUserAgentLen = 512
	maxReasonLen    = 1024
)

// Event is one audit entry.
type Event struct {
	At           time.Time // zero: the database's now()
	ActorID      string
	ActorRole    string
	Action       string
	ResourceType string
	ResourceID   string
	PatientID    string
	VisitID      string
	IP           string
	UserAgent    string
	Outcome      Outcome
	Reason       string
}

// ErrInvalid is returned for an event that cannot be recorded as given.
var ErrInvalid = errors.New("audit: invalid event")

func (e *Event) normalize() error {
	if e.Action == "" || len(e.Action) > 64 {
		return fmt.Errorf("%w: action", ErrInvalid)
	}
	switch e.Outcome {
	case Success, Failure, Denied:
	default:
		return fmt.Errorf("%w: outcome", ErrInvalid)
	}
	for _, f := range []*string{&e.ActorID, &e.ActorRole, &e.ResourceType, &e.ResourceID, &e.PatientID, &e.VisitID, &e.IP} {
		*f = truncate(*f, maxIDLen)
	}
	e.UserAgent = truncate(e.UserAgent, maxUserAgentLen)
	e.Reason = truncate(e.Reason, maxReasonLen)
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the column stays valid UTF-8.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Execer is what Append needs from a pool, connection or transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Log appends audit entries to PostgreSQL.
type Log struct {
	pool *pgxpool.Pool
}

// New returns a Log writing through pool.
func New(pool *pgxpool.Pool) *Log { return &Log{pool: pool} }

// Append records e and returns once it is committed.
func (l *Log) Append(ctx context.Context, e Event) error {
	return AppendTx(ctx, l.pool, e)
}

// AppendTx records e through x, typically a transaction that also makes the
// change being audited, so that both commit or neither does.
func AppendTx(ctx context.Context, x Execer, e Event) error {
	if err := e.normalize(); err != nil {
		return err
	}
	var at any
	if !e.At.IsZero() {
		at = e.At
	}
	_, err := x.Exec(ctx, `INSERT INTO audit_events
		(at, actor_id, actor_role, action, resource_type, resource_id, patient_id, visit_id, ip, user_agent, outcome, reason)
		VALUES (COALESCE($1, now()), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		at, e.ActorID, e.ActorRole, e.Action, e.ResourceType, e.ResourceID, e.PatientID, e.VisitID,
		e.IP, e.UserAgent, string(e.Outcome), e.Reason)
	if err != nil {
		return fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	return nil
}

// Entry is a stored event with its sequence number.
type Entry struct {
	Seq int64
	Event
}

// Recent returns up to limit entries, newest first, optionally only for one
// visit. It is a building block for the admin pages and tests.
func (l *Log) Recent(ctx context.Context, visitID string, limit int) ([]Entry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := l.pool.Query(ctx, `SELECT seq, at, actor_id, actor_role, action, resource_type, resource_id,
		patient_id, visit_id, ip, user_agent, outcome, reason
		FROM audit_events WHERE ($1 = '' OR visit_id = $1) ORDER BY seq DESC LIMIT $2`, visitID, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: recent: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		var outcome string
		err := r.Scan(&e.Seq, &e.At, &e.ActorID, &e.ActorRole, &e.Action, &e.ResourceType, &e.ResourceID,
			&e.PatientID, &e.VisitID, &e.IP, &e.UserAgent, &outcome, &e.Reason)
		e.Outcome = Outcome(outcome)
		return e, err
	})
}
