// Package audit keeps the tamper-evident audit trail. Callers append before
// they grant access: an error from Append means the access must be refused.
//
// Every row is hash-chained to the one before (see chain.go for the
// canonical encoding); a Checkpointer signs the chain head and anchors it in a
// write-once bucket; Verify recomputes the chain and checks it against the
// signed checkpoints.
//
// Entries hold opaque IDs only — never names, dates of birth, tokens or SDP.
package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
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
	At           time.Time // zero: the database's now(); stored to the microsecond
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

func (e *Event) normalize() error {
	if e.Action == "" || len(e.Action) > 64 {
		return fmt.Errorf("%w: action", ErrInvalid)
	}
	switch e.Outcome {
	case Success, Failure, Denied:
	default:
		return fmt.Errorf("%w: outcome", ErrInvalid)
	}
	e.Action = clean(e.Action, 64)
	for _, f := range []*string{&e.ActorID, &e.ActorRole, &e.ResourceType, &e.ResourceID, &e.PatientID, &e.VisitID, &e.IP} {
		*f = clean(*f, maxIDLen)
	}
	e.UserAgent = clean(e.UserAgent, maxUserAgentLen)
	e.Reason = clean(e.Reason, maxReasonLen)
	return nil
}

// clean makes s storable as PostgreSQL text (valid UTF-8, no NUL) and cuts
// it to at most n bytes, so that no client-sent value can fail an append.
func clean(s string, n int) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return Truncate(s, n)
}

// Truncate cuts s to at most n bytes on a rune boundary, so that a text
// column stays valid UTF-8: how audit entries and session rows bound what a
// client sent (an address, a User-Agent).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the column stays valid UTF-8.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Execer is what AppendTx needs from a pool, connection or transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Batching: while one batch commits, later callers queue; the next batch
// takes up to maxBatch of them in one statement (one transaction).
const (
	maxBatch = 512
	// commitTimeout bounds one batch whatever its callers' contexts say: a
	// batch holds other callers' entries, so one caller's cancellation must
	// not abort it.
	commitTimeout = 30 * time.Second
)

// Log appends audit entries to PostgreSQL. It is safe for concurrent use and
// needs no closing: it starts no goroutines. Concurrent Appends are grouped
// into batches (group commit): the first caller to arrive commits a batch
// while the others queue, then hands the queue to one of them.
type Log struct {
	pool *pgxpool.Pool

	mu      sync.Mutex
	pending []*request // queued, in arrival order
	leading bool       // some caller is committing batches

	entries atomic.Uint64
	batches atomic.Uint64
	// latency observes Append and AppendAll, queueing included: what a
	// caller waits for its entry (a metric, openvisit_audit_append_seconds).
	latency prometheus.Histogram
}

type request struct {
	evs    []Event    // committed together, in order, in one batch
	err    error      // the result, set by the leader
	done   chan error // buffered: the result, or errLead
	leader bool       // chosen to lead the next batch (guarded by Log.mu)
}

// errLead tells a queued caller that it now commits the queue.
var errLead = errors.New("audit: lead")

// New returns a Log writing through pool.
func New(pool *pgxpool.Pool) *Log {
	return &Log{pool: pool, latency: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "openvisit_audit_append_seconds",
		Help:    "Time an audit Append waits until its entry is committed (group commit, queueing included); entries appended inside a change's transaction are part of that change.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})}
}

// Collectors are the log's metrics, for the process's registry.
func (l *Log) Collectors() []prometheus.Collector { return []prometheus.Collector{l.latency} }

// Stats counts what a Log has committed.
type Stats struct {
	Entries uint64 // entries committed by Append
	Batches uint64 // transactions that committed them
}

// Stats returns the counts so far.
func (l *Log) Stats() Stats {
	return Stats{Entries: l.entries.Load(), Batches: l.batches.Load()}
}

// Append records e and returns once it is committed, hash-chained, to the
// trail. Concurrent calls share a transaction; each still returns only
// after its own entry committed. When ctx ends before the entry left the
// queue, Append returns ctx's error and the entry is not written.
func (l *Log) Append(ctx context.Context, e Event) error {
	return l.AppendAll(ctx, []Event{e})
}

// AppendAll records evs as one unit through the same batches as Append: they
// are chained next to each other, in order, and commit in one transaction or
// not at all (a batch never splits them). A view that shows several patients
// appends one entry per patient this way, before the view is answered.
func (l *Log) AppendAll(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	start := time.Now()
	err := l.appendAll(ctx, evs)
	if err == nil {
		l.latency.Observe(time.Since(start).Seconds())
	}
	return err
}

func (l *Log) appendAll(ctx context.Context, evs []Event) error {
	evs = slices.Clone(evs)
	for i := range evs {
		if err := evs[i].normalize(); err != nil {
			return err
		}
	}
	name := evs[0].Action
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: append %s: %w", name, err)
	}
	r := &request{evs: evs, done: make(chan error, 1)}
	l.mu.Lock()
	l.pending = append(l.pending, r)
	lead := !l.leading
	l.leading = true
	l.mu.Unlock()
	if lead {
		return l.lead(ctx, r)
	}
	select {
	case err := <-r.done:
		if err == errLead {
			return l.lead(ctx, r)
		}
		return err
	case <-ctx.Done():
	}
	l.mu.Lock()
	if !r.leader {
		for i, q := range l.pending {
			if q == r {
				l.pending = append(l.pending[:i], l.pending[i+1:]...)
				l.mu.Unlock()
				return fmt.Errorf("audit: append %s: %w", name, ctx.Err())
			}
		}
	}
	l.mu.Unlock()
	// Already in a batch being committed (bounded by commitTimeout), or
	// chosen to lead: see it through.
	if err := <-r.done; err != errLead {
		return err
	}
	return l.lead(ctx, r)
}

// lead commits batches from the queue until me's batch has committed, then
// hands the rest of the queue to its oldest caller.
func (l *Log) lead(ctx context.Context, me *request) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	for mine := false; !mine; {
		l.mu.Lock()
		// Up to maxBatch entries, whole requests only (at least one).
		n, entries := 0, 0
		for n < len(l.pending) && (n == 0 || entries+len(l.pending[n].evs) <= maxBatch) {
			entries += len(l.pending[n].evs)
			n++
		}
		batch := make([]*request, n)
		copy(batch, l.pending)
		l.pending = append(l.pending[:0], l.pending[n:]...)
		l.mu.Unlock()

		l.commit(cctx, batch)
		for _, r := range batch {
			if r == me {
				mine = true
				continue
			}
			r.done <- r.err
		}
	}
	l.mu.Lock()
	if len(l.pending) > 0 {
		next := l.pending[0]
		next.leader = true
		next.done <- errLead
	} else {
		l.leading = false
	}
	l.mu.Unlock()
	return me.err
}

// commit writes batch in one statement. If the batch fails on bad data
// (which normalize should make impossible), each caller's entries are
// retried on their own so that one caller cannot refuse the others.
func (l *Log) commit(ctx context.Context, batch []*request) {
	err := l.insert(ctx, batch)
	if err != nil && len(batch) > 1 && isDataError(err) {
		for _, r := range batch {
			l.commit(ctx, []*request{r})
		}
		return
	}
	for _, r := range batch {
		r.err = err
	}
}

func isDataError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

// insertBatch is one multi-row INSERT; the chain trigger assigns seq,
// prev_hash and hash to each row in the order given.
const insertBatch = `INSERT INTO audit_events
	(at, actor_id, actor_role, action, resource_type, resource_id, patient_id, visit_id, ip, user_agent, outcome, reason)
	SELECT coalesce(at, now()), actor_id, actor_role, action, resource_type, resource_id, patient_id, visit_id, ip, user_agent, outcome, reason
	FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
		WITH ORDINALITY AS u(at, actor_id, actor_role, action, resource_type, resource_id, patient_id, visit_id, ip, user_agent, outcome, reason, n)
	ORDER BY n`

func (l *Log) insert(ctx context.Context, batch []*request) error {
	var evs []*Event
	for _, r := range batch {
		for i := range r.evs {
			evs = append(evs, &r.evs[i])
		}
	}
	n := len(evs)
	at := make([]pgtype.Timestamptz, n)
	cols := make([][]string, 11)
	for i := range cols {
		cols[i] = make([]string, n)
	}
	for i, e := range evs {
		at[i] = pgtype.Timestamptz{Time: e.At, Valid: !e.At.IsZero()}
		for j, v := range []string{e.ActorID, e.ActorRole, e.Action, e.ResourceType, e.ResourceID,
			e.PatientID, e.VisitID, e.IP, e.UserAgent, string(e.Outcome), e.Reason} {
			cols[j][i] = v
		}
	}
	_, err := l.pool.Exec(ctx, insertBatch, at, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5],
		cols[6], cols[7], cols[8], cols[9], cols[10])
	if err != nil {
		if n == 1 {
			return fmt.Errorf("audit: append %s: %w", evs[0].Action, err)
		}
		return fmt.Errorf("audit: append batch of %d: %w", n, err)
	}
	l.entries.Add(uint64(n))
	l.batches.Add(1)
	return nil
}

// AppendTx records e through x, typically a transaction that also makes the
// change being audited, so that both commit or neither does.
//
// The insert takes the chain head's row lock, which x's transaction holds
// until it ends: every other append (in any process) waits for it. Append
// the audit entry as the last statement before commit, and never call
// Log.Append from inside a transaction that has called AppendTx.
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

// Entry is a stored event with its place in the chain.
type Entry struct {
	Seq int64
	Event
	PrevHash []byte // the previous entry's Hash; 32 zero bytes for seq 1
	Hash     []byte // SHA-256 over the canonical encoding (see Entry.ComputeHash)
}

const entryColumns = `seq, at, actor_id, actor_role, action, resource_type, resource_id,
	patient_id, visit_id, ip, user_agent, outcome, reason, prev_hash, hash`

func scanEntry(r pgx.Row, e *Entry) error {
	var outcome string
	err := r.Scan(&e.Seq, &e.At, &e.ActorID, &e.ActorRole, &e.Action, &e.ResourceType, &e.ResourceID,
		&e.PatientID, &e.VisitID, &e.IP, &e.UserAgent, &outcome, &e.Reason, &e.PrevHash, &e.Hash)
	e.Outcome = Outcome(outcome)
	return err
}

// Recent returns up to limit entries, newest first, optionally only for one
// visit. It is a building block for the admin pages and tests.
func (l *Log) Recent(ctx context.Context, visitID string, limit int) ([]Entry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := l.pool.Query(ctx, `SELECT `+entryColumns+`
		FROM audit_events WHERE ($1 = '' OR visit_id = $1) ORDER BY seq DESC LIMIT $2`, visitID, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: recent: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := scanEntry(r, &e)
		return e, err
	})
}
