package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/openvisit/openvisit/internal/audit/anchor"
)

// Rows written after the last signed checkpoint are rewritten by a database
// superuser who recomputes the chain. Before head anchors, nothing noticed
// and the next checkpoint signed the forgery. Now the checkpointer anchors
// the head in the write-once bucket within seconds of the writes; verify
// names the rewritten rows from those anchors, and the checkpointer refuses
// to sign the forged head.
func TestAuditTailRewriteDetected(t *testing.T) {
	r := newTailRun(t)
	r.anchorHeadsWhileWriting()

	// The superuser lifts the append-only triggers, rewrites #12 and #14,
	// recomputes every hash from #12 with the database's own function and
	// moves the chain head.
	superuser(t, r.pool,
		`ALTER TABLE audit_events DISABLE TRIGGER USER`,
		`UPDATE audit_events SET outcome = 'denied' WHERE seq = 12`,
		`UPDATE audit_events SET actor_id = 'u-forged', reason = 'covered up' WHERE seq = 14`,
		fmt.Sprintf(rechain, 12),
		`ALTER TABLE audit_events ENABLE TRIGGER USER`)

	r.checkVerifyNamesRows()
	r.checkCheckpointerRefuses()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failures) != 1 || !errors.Is(r.failures[0], ErrTampered) {
		t.Errorf("OnFailure got %v, want the refusal once", r.failures)
	}
}

// tailRun is a chain of ten entries, an Object Lock bucket, and a
// checkpointer that anchors the head every second and records its
// failures.
type tailRun struct {
	t        *testing.T
	pool     *pgxpool.Pool
	client   *minio.Client
	bucket   *anchor.Bucket
	key      ed25519.PrivateKey
	pub      ed25519.PublicKey
	l        *Log
	c        *Checkpointer
	mu       sync.Mutex
	failures []error // what OnFailure reported
}

func newTailRun(t *testing.T) *tailRun {
	t.Helper()
	r := &tailRun{t: t, pool: newPool(t)}
	r.client, r.bucket = anchorBucket(t)
	r.key = newKey(t)
	r.pub = pubOf(r.key)
	r.l = New(r.pool)
	appendN(t, r.l, 10)
	c, err := NewCheckpointer(CheckpointerParams{Pool: r.pool, Key: r.key, Anchor: r.bucket,
		Interval: time.Hour, HeadInterval: time.Second,
		OnFailure: func(err error) { r.mu.Lock(); r.failures = append(r.failures, err); r.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	return r
}

// anchorHeadsWhileWriting runs the checkpointer as under `serve`: it signs
// a checkpoint of #10 at once (the next is an hour away). Entries #11–#15
// are written after it, in two bursts, and each burst's head is anchored;
// while idle nothing new is anchored. The chain then verifies.
func (r *tailRun) anchorHeadsWhileWriting() {
	t, pool, pub := r.t, r.pool, r.pub
	t.Helper()
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.c.Run(rctx); close(done) }()
	for deadline := time.Now().Add(60 * time.Second); countCheckpoints(t, pool) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint of #10 within 60 s")
		}
	}
	appendN(t, r.l, 2)
	first := waitHead(t, r.bucket, pub, 12)
	appendN(t, r.l, 3)
	second := waitHead(t, r.bucket, pub, 15)
	for _, h := range []HeadAnchor{first, second} {
		t.Logf("head anchor #%d (entries #%d..#%d) signed %v after its last entry was written",
			h.Seq, h.FromSeq, h.Seq, h.SignedAt.Sub(entryTime(t, pool, h.Seq)).Round(time.Millisecond))
	}
	// Idle: no writes, no new anchor.
	before := len(heads(t, r.bucket, pub))
	time.Sleep(3 * time.Second)
	if after := len(heads(t, r.bucket, pub)); after != before {
		t.Errorf("head anchors while idle: %d, then %d", before, after)
	}
	cancel()
	<-done
	verifyOK(t, pool, pub, r.bucket)
}

// checkVerifyNamesRows: Postgres alone cannot tell (the chain is
// consistent and matches the signed checkpoint at #10); the head anchors
// name the rows, in Verify and in the verify command's output.
func (r *tailRun) checkVerifyNamesRows() {
	t, ctx := r.t, context.Background()
	t.Helper()
	verifyOK(t, r.pool, r.pub)
	rep, err := Verify(ctx, r.pool, r.pub, r.bucket)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(rep), []string{"rewritten#12", "rewritten#14"}; !slices.Equal(got, want) {
		t.Errorf("findings = %v, want %v\n%v", got, want, rep.Findings)
	}
	var out bytes.Buffer
	if err := VerifyCommand(ctx, r.pool, r.client, r.bucket.Name(), r.pub, &out); !errors.Is(err, ErrTampered) {
		t.Errorf("audit verify: %v, want ErrTampered", err)
	}
	for _, want := range []string{"#12 ", "#14 ", "rewritten"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("audit verify output lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("audit verify:\n%s", out.String())
}

// checkCheckpointerRefuses: the checkpointer refuses to sign the forged
// head, both the running one (which checked #15 itself) and a new one (a
// restart), which names the rewritten rows from the bucket's anchors.
// Nothing new is signed.
func (r *tailRun) checkCheckpointerRefuses() {
	t, ctx := r.t, context.Background()
	t.Helper()
	checkpointsBefore, headsBefore := countCheckpoints(t, r.pool), len(heads(t, r.bucket, r.pub))
	if _, err := r.c.CheckpointNow(ctx); !errors.Is(err, ErrTampered) {
		t.Errorf("running checkpointer signed the forged head: %v", err)
	}
	if _, err := r.c.AnchorHead(ctx); !errors.Is(err, ErrTampered) {
		t.Errorf("running checkpointer anchored the forged head: %v", err)
	}
	restarted, err := NewCheckpointer(CheckpointerParams{Pool: r.pool, Key: r.key, Anchor: r.bucket})
	if err != nil {
		t.Fatal(err)
	}
	_, err = restarted.CheckpointNow(ctx)
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "#12, #14 ") {
		t.Errorf("restarted checkpointer: %v, want a refusal naming #12 and #14", err)
	}
	if n, m := countCheckpoints(t, r.pool), len(heads(t, r.bucket, r.pub)); n != checkpointsBefore || m != headsBefore {
		t.Errorf("after refusals: %d checkpoints, %d head anchors; want %d and %d", n, m, checkpointsBefore, headsBefore)
	}
}

// waitHead waits for a validly signed head anchor covering entry seq.
func waitHead(t *testing.T, b *anchor.Bucket, pub ed25519.PublicKey, seq int64) HeadAnchor {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, h := range heads(t, b, pub) {
			if h.Seq >= seq {
				return h
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no head anchor for #%d within 60 s", seq)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heads lists the validly signed head anchors in b, in key (= seq) order.
func heads(t *testing.T, b *anchor.Bucket, pub ed25519.PublicKey) []HeadAnchor {
	t.Helper()
	var out []HeadAnchor
	_, err := b.After(context.Background(), HeadPrefix, "", nil, func(v anchor.Version) error {
		h, err := parseHead(v.Body)
		if err != nil || !h.Valid(pub) || headKey(h) != v.Key {
			return fmt.Errorf("%s: bad head anchor (%v)", v.Key, err)
		}
		out = append(out, h)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func entryTime(t *testing.T, pool *pgxpool.Pool, seq int64) time.Time {
	t.Helper()
	var at time.Time
	if err := pool.QueryRow(context.Background(), `SELECT at FROM audit_events WHERE seq = $1`, seq).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

func countCheckpoints(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_checkpoints`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// superuser runs stmts in one transaction as the test database's superuser.
func superuser(t *testing.T, pool *pgxpool.Pool, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("superuser: %v", err)
	}
}

// An interval with more writes than one head anchor lists: the anchor names
// the last maxHeadHashes entries and pins the earlier ones through the
// chain, so a rewrite among those is reported as a range ending at the
// first listed entry.
func TestHeadAnchorCapped(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	_, bucket := anchorBucket(t)
	key := newKey(t)
	const n = maxHeadHashes + 20
	appendN(t, New(pool), n)
	c := mustCheckpointer(t, pool, key, bucket)
	h, err := c.AnchorHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != n || h.FromSeq != 21 || len(h.Hashes) != maxHeadHashes {
		t.Fatalf("head anchor #%d from #%d with %d hashes, want #%d from #21 with %d", h.Seq, h.FromSeq, len(h.Hashes), n, maxHeadHashes)
	}
	if again, err := c.AnchorHead(ctx); err != nil || again.Seq != 0 {
		t.Errorf("second head anchor with no writes: #%d, %v", again.Seq, err)
	}
	verifyOK(t, pool, pubOf(key), bucket)
	tamper(t, pool, `UPDATE audit_events SET outcome = 'denied' WHERE seq = 5`, fmt.Sprintf(rechain, 5))
	rep, err := Verify(ctx, pool, pubOf(key), bucket)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(rep), []string{"rewritten#21"}; !slices.Equal(got, want) || !strings.Contains(rep.Findings[0].Detail, "#1..#21") {
		t.Errorf("findings = %v, want %v naming #1..#21\n%v", got, want, rep.Findings)
	}
}
