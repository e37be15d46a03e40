package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// restoreEvents appends the entries from..to (1-based) of one fixed
// history, so that two databases given the same range hold the same
// entries with the same hashes: what a restored backup holds.
func restoreEvents(t *testing.T, pool *pgxpool.Pool, from, to int) {
	t.Helper()
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := from; i <= to; i++ {
		e := Event{At: base.Add(time.Duration(i) * time.Second), Action: "test.read", Outcome: Success,
			ActorID: "u1", ResourceType: "recording", ResourceID: fmt.Sprintf("r%d", i)}
		if err := New(pool).Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditRestoreGap: a database restored from a backup taken at #5,
// while the write-once bucket anchors the lost entries #6..#8. Verify
// fails and names the lost range as truncated until the restore is
// recorded; then it passes, listing exactly the lost entries; the
// checkpointer extends the restored chain and verify still passes; and the
// restore hides nothing before its point.
func TestAuditRestoreGap(t *testing.T) {
	ctx := context.Background()
	_, bucket := anchorBucket(t)
	key := newKey(t)

	live := newPool(t)
	restoreEvents(t, live, 1, 5)
	if cp, err := mustCheckpointer(t, live, key, bucket).CheckpointNow(ctx); err != nil || cp.Seq != 5 {
		t.Fatalf("checkpoint at the backup's point: %d, %v", cp.Seq, err)
	}
	restored := newPool(t) // the backup: entries #1..#5
	restoreEvents(t, restored, 1, 5)
	restoreEvents(t, live, 6, 8) // written after the backup, then lost
	c := mustCheckpointer(t, live, key, bucket)
	if h, err := c.AnchorHead(ctx); err != nil || h.Seq != 8 {
		t.Fatalf("head anchor of the lost entries: %d, %v", h.Seq, err)
	}
	if _, err := c.CheckpointNow(ctx); err != nil {
		t.Fatal(err)
	}

	rep, err := Verify(ctx, restored, pubOf(key), bucket)
	if err != nil || !rep.Has(Truncated, 6) {
		t.Fatalf("verify before the restore is recorded: %v, %v; want truncated at #6", kinds(rep), err)
	}

	r, err := RecordRestore(ctx, restored, key, bucket, "bk-test", "operator", time.Now())
	if err != nil || r.Seq != 5 || r.LostTo != 8 {
		t.Fatalf("RecordRestore = #%d lost to #%d, %v; want #5, #8", r.Seq, r.LostTo, err)
	}
	rep = verifyOK(t, restored, pubOf(key), bucket)
	want := []RestoreGap{{Seq: 5, LostFrom: 6, LostTo: 8, SignedAt: r.SignedAt, BackupID: "bk-test"}}
	if !slices.Equal(rep.Restores, want) {
		t.Fatalf("restores = %+v, want %+v", rep.Restores, want)
	}
	checkRestoreEntry(t, restored)

	// The checkpointer extends the restored chain past the lost entries.
	restoreEvents(t, restored, 20, 22)
	c = mustCheckpointer(t, restored, key, bucket)
	if h, err := c.AnchorHead(ctx); err != nil || h.Seq != 9 {
		t.Fatalf("head anchor after the restore: #%d, %v; want #9", h.Seq, err)
	}
	if cp, err := c.CheckpointNow(ctx); err != nil || cp.Seq != 9 {
		t.Fatalf("checkpoint after the restore: #%d, %v", cp.Seq, err)
	}
	if rep := verifyOK(t, restored, pubOf(key), bucket); rep.LastSeq != 9 || len(rep.Restores) != 1 {
		t.Fatalf("after the restore: head #%d, restores %v", rep.LastSeq, rep.Restores)
	}

	// Entries before the restore's point are still checked.
	tamper(t, restored, `UPDATE audit_events SET resource_id = 'other' WHERE seq = 3`)
	if rep, err := Verify(ctx, restored, pubOf(key), bucket); err != nil || !rep.Has(Edited, 3) {
		t.Fatalf("an entry before the restore edited: %v, %v", kinds(rep), err)
	}
}

func checkRestoreEntry(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var action, reason string
	if err := pool.QueryRow(context.Background(), `SELECT action, reason FROM audit_events WHERE seq = 6`).Scan(&action, &reason); err != nil {
		t.Fatal(err)
	}
	if action != ActionRestore || reason != "restored backup bk-test: chain continues from #5; entries #6..#8 anchored before the restore are not in the backup" {
		t.Errorf("entry #6 = %s %q, want the restore and its lost range", action, reason)
	}
}

// TestAuditRestoreRecordForged: a restore record not signed by the
// checkpoint key sets nothing aside: verify reports it, the entry written
// after it where an anchor names another (#3), and the truncation.
func TestAuditRestoreRecordForged(t *testing.T) {
	ctx := context.Background()
	_, bucket := anchorBucket(t)
	key := newKey(t)
	live := newPool(t)
	restoreEvents(t, live, 1, 4)
	if _, err := mustCheckpointer(t, live, key, bucket).CheckpointNow(ctx); err != nil {
		t.Fatal(err)
	}
	restored := newPool(t)
	restoreEvents(t, restored, 1, 2)
	if _, err := RecordRestore(ctx, restored, newKey(t), bucket, "bk-forged", "mallory", time.Now()); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, restored, pubOf(key), bucket)
	if err != nil || !rep.Has(BadCheckpoint, 2) || !rep.Has(Rewritten, 3) || !rep.Has(Truncated, 4) || len(rep.Restores) != 0 {
		t.Fatalf("verify with a forged restore record: %v restores %v, %v", kinds(rep), rep.Restores, err)
	}
	c, err := NewCheckpointer(CheckpointerParams{Pool: restored, Key: key, Anchor: bucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CheckpointNow(ctx); !errors.Is(err, ErrTampered) {
		t.Fatalf("checkpointer on the truncated chain: %v, want a refusal", err)
	}
}

// FuzzParseRestore: restore records are read back from the bucket over the
// network; no input may crash the parser, and what parses and validates
// re-encodes to the same record.
func FuzzParseRestore(f *testing.F) {
	key := newKey(f)
	r := RestoreRecord{Checkpoint: Checkpoint{Seq: 5, HeadHash: make([]byte, HashSize),
		SignedAt: time.Unix(1700000000, 0).UTC(), KeyID: KeyID(pubOf(key))}, LostTo: 8, BackupID: "bk-1"}
	r.Signature = ed25519.Sign(key, r.message())
	body, _ := r.marshal()
	f.Add(body)
	f.Add([]byte(`{"format":"openvisit.audit.restore.v1","seq":-1,"lost_to":-2}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseRestore(b)
		if err != nil || !got.Valid(pubOf(key)) {
			return
		}
		again, err := got.marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseRestore(again)
		if err != nil || !back.Valid(pubOf(key)) || back.Seq != got.Seq || back.LostTo != got.LostTo {
			t.Fatalf("re-encoded restore record: %+v, %v", back, err)
		}
	})
}
