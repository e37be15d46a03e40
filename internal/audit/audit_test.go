package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/testenv"
)

func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return dbtest.Pool(t, 4)
}

func TestAppendAndRead(t *testing.T) {
	ctx := context.Background()
	l := New(newPool(t))
	long := strings.Repeat("é", 1000) // multi-byte: truncation must keep UTF-8 valid
	if err := l.Append(ctx, Event{Action: "test.read", Outcome: Success, VisitID: "v1", ActorID: "u1", UserAgent: long}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := l.Append(ctx, Event{At: at, Action: "test.read", Outcome: Denied, VisitID: "v2"}); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Recent(ctx, "v2", 1); err != nil || len(got) != 1 || !got[0].At.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("Recent(v2) = %+v, %v; want at %v to the microsecond", got, err, at)
	}
	got, err := l.Recent(ctx, "v1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ActorID != "u1" || got[0].Outcome != Success {
		t.Fatalf("Recent(v1) = %+v", got)
	}
	if n := len(got[0].UserAgent); n > maxUserAgentLen {
		t.Errorf("user agent stored with %d bytes, limit %d", n, maxUserAgentLen)
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	ctx := context.Background()
	l := New(newPool(t))
	for name, e := range map[string]Event{
		"no action":   {Outcome: Success},
		"bad outcome": {Action: "x", Outcome: "maybe"},
	} {
		if err := l.Append(ctx, e); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// The trigger refuses changes even to a superuser connection (unless it
// turns triggers off); the role split that also removes the privilege is
// TestAuditAppRoleCannotModify.
func TestAuditTableIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	if err := New(pool).Append(ctx, Event{Action: "test.write", Outcome: Success}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"UPDATE audit_events SET outcome = 'failure'",
		"DELETE FROM audit_events",
		"TRUNCATE audit_events",
	} {
		if _, err := pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", stmt, err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM audit_events").Scan(&n); err != nil || n != 1 {
		t.Fatalf("audit rows = %d (%v), want 1", n, err)
	}
}

// Many callers append at once, some through their own transactions (a few
// of which roll back): the chain stays gapless and valid, and Append really
// batches.
func TestAuditConcurrentAppends(t *testing.T) {
	const callers, each = 50, 40
	const txCallers, txEach = 4, 10
	ctx := context.Background()
	pool := newPool(t)
	l := New(pool)
	var wg sync.WaitGroup
	errs := make(chan error, callers*each+txCallers*txEach)
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(ctx, Event{Action: "test.read", Outcome: Success,
					ActorID: fmt.Sprintf("u%d", c), ResourceID: fmt.Sprintf("r%d", i)}); err != nil {
					errs <- err
				}
			}
		})
	}
	committedTx := 0
	for c := range txCallers {
		for i := range txEach {
			if i%3 != 2 {
				committedTx++
			}
		}
		wg.Go(func() {
			for i := range txEach {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if err := AppendTx(ctx, tx, Event{Action: "test.tx", Outcome: Success, ActorID: fmt.Sprintf("t%d", c)}); err != nil {
						return err
					}
					if i%3 == 2 {
						return errRollback // burns no sequence number
					}
					return nil
				})
				if err != nil && !errors.Is(err, errRollback) {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	want := int64(callers*each + committedTx)
	var n, lo, hi int64
	if err := pool.QueryRow(ctx, `SELECT count(*), min(seq), max(seq) FROM audit_events`).Scan(&n, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if n != want || lo != 1 || hi != want {
		t.Fatalf("rows %d, seq %d..%d; want %d rows numbered 1..%d", n, lo, hi, want, want)
	}
	key := newKey(t)
	if _, err := mustCheckpointer(t, pool, key, nil).CheckpointNow(ctx); err != nil {
		t.Fatal(err)
	}
	if rep := verifyOK(t, pool, pubOf(key)); rep.Entries != want {
		t.Fatalf("verified %d entries, want %d", rep.Entries, want)
	}
	st := l.Stats()
	t.Logf("%d entries in %d batches (%.1f per batch)", st.Entries, st.Batches, float64(st.Entries)/float64(st.Batches))
	if st.Entries != callers*each || st.Batches >= st.Entries {
		t.Fatalf("stats = %+v: want %d entries in fewer batches", st, callers*each)
	}
}

var errRollback = errors.New("roll back")

// A caller whose context ends while queued gets its error and its entry is
// not written; the others are unaffected.
func TestAppendCancelledWhileQueued(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	l := New(pool)
	// Hold the chain head so that the first batch blocks.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := AppendTx(ctx, tx, Event{Action: "test.hold", Outcome: Success}); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- l.Append(ctx, Event{Action: "test.first", Outcome: Success}) }()
	for { // wait until the first caller leads a batch
		l.mu.Lock()
		queued := len(l.pending)
		l.mu.Unlock()
		if queued == 0 && l.leadingNow() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := l.Append(cctx, Event{Action: "test.cancelled", Outcome: Success}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued append with an ended context: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, Event{Action: "test.after", Outcome: Success}); err != nil {
		t.Fatal(err)
	}
	got, err := l.Recent(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range got {
		actions = append(actions, fmt.Sprintf("%d:%s", e.Seq, e.Action))
	}
	if want := []string{"3:test.after", "2:test.first", "1:test.hold"}; !slices.Equal(actions, want) {
		t.Fatalf("entries = %v, want %v", actions, want)
	}
}

func (l *Log) leadingNow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading
}

// The Go encoding is the one the database hashes, for awkward values too;
// the golden hash (computed independently from the spec in chain.go) pins
// the format.
func TestCanonicalEncoding(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	at := time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)
	events := []Event{
		{At: at, Action: "test.read", Outcome: Success},
		{At: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600)), Action: "test.read", Outcome: Denied,
			ActorID: "é\u00a0ü", ActorRole: "admin", ResourceType: "recording", ResourceID: "r\x00nul", PatientID: "p",
			VisitID: "v", IP: "2001:db8::1", UserAgent: "bad \xff utf8", Reason: strings.Repeat("ß", 600)},
		{Action: "test.read", Outcome: Failure, Reason: "now()"},
	}
	for _, e := range events {
		if err := AppendTx(ctx, pool, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := New(pool).Recent(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if h := e.ComputeHash(); !bytes.Equal(h, e.Hash) {
			t.Errorf("#%d: Go hash %x, database hash %x", e.Seq, h, e.Hash)
		}
	}

	golden := Entry{Seq: 7, PrevHash: bytes.Repeat([]byte{0xab}, HashSize), Event: Event{
		At: time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC), ActorID: "u1", ActorRole: "admin",
		Action: "recording.play", ResourceType: "recording", ResourceID: "r1", PatientID: "p1", VisitID: "v1",
		IP: "192.0.2.1", UserAgent: "Mozilla/5.0", Outcome: Success, Reason: "é"}}
	const want = "7dfe13b63f8d47b81fdc5a2958b568914b790803f38df2afcf0d8bec9d7beecb"
	var sqlHash []byte
	if err := pool.QueryRow(ctx, `SELECT audit_event_hash($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		golden.PrevHash, golden.Seq, golden.At, golden.ActorID, golden.ActorRole, golden.Action, golden.ResourceType,
		golden.ResourceID, golden.PatientID, golden.VisitID, golden.IP, golden.UserAgent, string(golden.Outcome), golden.Reason).
		Scan(&sqlHash); err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(golden.ComputeHash()); h != want || hex.EncodeToString(sqlHash) != want {
		t.Errorf("golden hash: Go %s, SQL %x, want %s", h, sqlHash, want)
	}
}

// Rows written before migration 0003 (with bigserial gaps) are renumbered
// 1, 2, 3… and chained by the migration; appends continue the chain.
func TestMigrationChainsExistingRows(t *testing.T) {
	ctx := context.Background()
	pool, err := db.Open(ctx, testenv.Postgres(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ms, err := db.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	run := func(m db.Migration) {
		if _, err := pool.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	run(ms[0])
	run(ms[1])
	legacy := `INSERT INTO audit_events (action, outcome, actor_id) VALUES ('legacy.read', 'success', 'u1')`
	for i := range 4 {
		if i == 2 { // a rolled-back insert leaves a gap in the bigserial
			tx, _ := pool.Begin(ctx)
			_, _ = tx.Exec(ctx, legacy)
			_ = tx.Rollback(ctx)
		}
		if _, err := pool.Exec(ctx, legacy); err != nil {
			t.Fatal(err)
		}
	}
	run(ms[2])
	appendN(t, New(pool), 2)
	var seqs []int64
	rows, _ := pool.Query(ctx, `SELECT seq FROM audit_events ORDER BY seq`)
	seqs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 2, 3, 4, 5, 6}; !slices.Equal(seqs, want) {
		t.Fatalf("seqs = %v, want %v", seqs, want)
	}
	verifyOK(t, pool, pubOf(newKey(t)))
}
