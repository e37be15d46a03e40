package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Filter selects audit entries for search and export. Empty fields match
// everything.
type Filter struct {
	ActorID   string
	PatientID string
	VisitID   string
	Action    string
	Outcome   Outcome
	From, To  time.Time // To exclusive; zero: unbounded
	BeforeSeq int64     // newest-first paging: only entries below this
	Limit     int       // at most this many (search); 0 with Each: all
	// PatientVisits widens PatientID to entries about the patient's visits
	// (who joined, viewed or recorded them) — the per-patient access report.
	PatientVisits bool
}

func (f Filter) where() (string, []any) {
	q := `WHERE ($1 = '' OR actor_id = $1) AND ($3 = '' OR visit_id = $3)
		AND ($4 = '' OR action = $4) AND ($5 = '' OR outcome = $5)
		AND ($6::timestamptz IS NULL OR at >= $6) AND ($7::timestamptz IS NULL OR at < $7)
		AND ($8 = 0 OR seq < $8)`
	if f.PatientVisits {
		q += ` AND ($2 = '' OR patient_id = $2 OR visit_id IN (SELECT id::text FROM visits WHERE patient_id::text = $2))`
	} else {
		q += ` AND ($2 = '' OR patient_id = $2)`
	}
	var from, to any
	if !f.From.IsZero() {
		from = f.From
	}
	if !f.To.IsZero() {
		to = f.To
	}
	return q, []any{f.ActorID, f.PatientID, f.VisitID, f.Action, string(f.Outcome), from, to, f.BeforeSeq}
}

// Search returns matching entries, newest first, at most f.Limit (1..1000).
func Search(ctx context.Context, pool *pgxpool.Pool, f Filter) ([]Entry, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	where, args := f.where()
	rows, err := pool.Query(ctx, `SELECT `+entryColumns+` FROM audit_events `+where+
		fmt.Sprintf(` ORDER BY seq DESC LIMIT %d`, f.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("audit: search: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := scanEntry(r, &e)
		return e, err
	})
}

// Each streams every matching entry in chain order to fn, without holding
// them in memory (exports).
func Each(ctx context.Context, pool *pgxpool.Pool, f Filter, fn func(*Entry) error) error {
	where, args := f.where()
	rows, err := pool.Query(ctx, `SELECT `+entryColumns+` FROM audit_events `+where+` ORDER BY seq`, args...)
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	defer rows.Close()
	var e Entry
	for rows.Next() {
		if err := scanEntry(rows, &e); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// LatestCheckpoint returns the newest signed checkpoint in Postgres.
func LatestCheckpoint(ctx context.Context, pool *pgxpool.Pool) (Checkpoint, bool, error) {
	var c Checkpoint
	err := pool.QueryRow(ctx, `SELECT seq, head_hash, signed_at, key_id, signature FROM audit_checkpoints
		ORDER BY seq DESC, signed_at DESC LIMIT 1`).Scan(&c.Seq, &c.HeadHash, &c.SignedAt, &c.KeyID, &c.Signature)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	return c, true, nil
}
