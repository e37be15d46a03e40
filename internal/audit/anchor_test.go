package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/openvisit/openvisit/internal/audit/anchor"
	"github.com/openvisit/openvisit/internal/objstore"
	"github.com/openvisit/openvisit/internal/testenv"
)

// anchorBucket creates a fresh Object Lock bucket. Its objects stay locked
// for the retention period (one minute), so the bucket is left behind:
// compliance mode lets nobody remove it sooner. Test buckets share the
// prefix ov-test-audit- for later cleaning.
func anchorBucket(t *testing.T) (*minio.Client, *anchor.Bucket) {
	t.Helper()
	client := minioClient(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	bucket, err := anchor.New(anchor.Params{Client: client, Bucket: "ov-test-audit-" + hex.EncodeToString(b[:]), Retention: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return client, bucket
}

func minioClient(t *testing.T) *minio.Client {
	t.Helper()
	client, err := objstore.New(testenv.MinIO(t).Config(""))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func readVersion(t *testing.T, c *minio.Client, bucket, key, version string) []byte {
	t.Helper()
	o, err := c.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{VersionID: version})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	body, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("get %s@%s: %v", key, version, err)
	}
	return body
}

// A checkpoint lands in the Object Lock bucket, where its version can be
// neither deleted nor changed: writing the key again adds a version beside
// it, and Verify still checks the original.
func TestAuditCheckpointAnchored(t *testing.T) {
	a := anchorFirstCheckpoint(t)
	original := a.checkLocked()
	a.checkUndeletable()
	a.overwriteKey(original)
	a.checkOverwriteFound()
	a.rewriteWithResignedAnchors()
	a.checkRewriteFound()
}

// anchoredCheckpoint is the first checkpoint of a chain of five entries,
// anchored in an Object Lock bucket.
type anchoredCheckpoint struct {
	t       *testing.T
	pool    *pgxpool.Pool
	client  *minio.Client
	bucket  *anchor.Bucket
	key     ed25519.PrivateKey
	cp      Checkpoint
	objKey  string // the checkpoint's object in the bucket
	version string // and its version there
}

// anchorFirstCheckpoint appends five entries and checkpoints them into a
// fresh Object Lock bucket; a second checkpoint of the unchanged head signs
// nothing new.
func anchorFirstCheckpoint(t *testing.T) *anchoredCheckpoint {
	t.Helper()
	ctx := context.Background()
	a := &anchoredCheckpoint{t: t, pool: newPool(t)}
	a.client, a.bucket = anchorBucket(t)
	a.key = newKey(t)
	l := New(a.pool)
	appendN(t, l, 5)

	cp, err := mustCheckpointer(t, a.pool, a.key, a.bucket).CheckpointNow(ctx)
	if err != nil || cp.Seq != 5 {
		t.Fatalf("checkpoint = %d, %v", cp.Seq, err)
	}
	a.cp = cp
	var anchored *time.Time
	if err := a.pool.QueryRow(ctx, `SELECT object_key, object_version, anchored_at FROM audit_checkpoints WHERE seq = 5`).
		Scan(&a.objKey, &a.version, &anchored); err != nil {
		t.Fatal(err)
	}
	if anchored == nil || a.objKey != checkpointKey(cp) || a.version == "" {
		t.Fatalf("checkpoint row: key %q version %q anchored %v", a.objKey, a.version, anchored)
	}
	// Nothing new to sign: no second checkpoint.
	if again, err := mustCheckpointer(t, a.pool, a.key, a.bucket).CheckpointNow(ctx); err != nil || !again.SignedAt.Equal(cp.SignedAt) {
		t.Errorf("second checkpoint of an unchanged head: %v, %v", again.SignedAt, err)
	}
	return a
}

// checkLocked checks that the stored object is the signed checkpoint,
// locked in compliance mode, and that the chain verifies against it; it
// returns the object.
func (a *anchoredCheckpoint) checkLocked() []byte {
	t, ctx := a.t, context.Background()
	t.Helper()
	original := readVersion(t, a.client, a.bucket.Name(), a.objKey, a.version)
	if got, err := parseCheckpoint(original); err != nil || !got.Valid(pubOf(a.key)) || !bytes.Equal(got.HeadHash, a.cp.HeadHash) {
		t.Fatalf("anchored object: %+v, %v", got, err)
	}
	mode, until, err := a.client.GetObjectRetention(ctx, a.bucket.Name(), a.objKey, a.version)
	if err != nil || mode == nil || *mode != minio.Compliance || until == nil || until.Before(time.Now()) {
		t.Fatalf("retention = %v until %v (%v), want COMPLIANCE in the future", mode, until, err)
	}
	verifyOK(t, a.pool, pubOf(a.key), a.bucket)
	return original
}

// checkUndeletable: the version cannot be deleted, not even bypassing
// governance, and its retention cannot be shortened.
func (a *anchoredCheckpoint) checkUndeletable() {
	t, ctx, name := a.t, context.Background(), a.bucket.Name()
	t.Helper()
	if err := a.client.RemoveObject(ctx, name, a.objKey, minio.RemoveObjectOptions{VersionID: a.version}); err == nil {
		t.Error("deleting the locked version succeeded")
	}
	if err := a.client.RemoveObject(ctx, name, a.objKey, minio.RemoveObjectOptions{VersionID: a.version, GovernanceBypass: true}); err == nil {
		t.Error("deleting the locked version with governance bypass succeeded")
	}
	past := time.Now().Add(-time.Hour)
	gov := minio.Governance
	if err := a.client.PutObjectRetention(ctx, name, a.objKey, minio.PutObjectRetentionOptions{
		VersionID: a.version, Mode: &gov, RetainUntilDate: &past, GovernanceBypass: true,
	}); err == nil {
		t.Error("shortening the retention succeeded")
	}
}

// overwriteKey "overwrites" the key with a forged checkpoint, which adds a
// version, and deletes it plainly, which adds a delete marker. The
// original version is still there, byte for byte.
func (a *anchoredCheckpoint) overwriteKey(original []byte) {
	t, ctx, name := a.t, context.Background(), a.bucket.Name()
	t.Helper()
	forger := newKey(t)
	forged := signCheckpoint(forger, a.cp.Seq, bytes.Repeat([]byte{7}, HashSize), a.cp.SignedAt)
	body, _ := json.Marshal(toJSON(forged))
	info, err := a.client.PutObject(ctx, name, a.objKey, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("put over the key: %v", err)
	}
	if info.VersionID == a.version {
		t.Fatal("put over the key replaced the version")
	}
	if err := a.client.RemoveObject(ctx, name, a.objKey, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("delete marker: %v", err)
	}
	if got := readVersion(t, a.client, name, a.objKey, a.version); !bytes.Equal(got, original) {
		t.Fatal("the original version changed")
	}
}

// checkOverwriteFound: Verify checks the original and reports the
// attempt; the forged version does not verify.
func (a *anchoredCheckpoint) checkOverwriteFound() {
	t := a.t
	t.Helper()
	rep, err := Verify(context.Background(), a.pool, pubOf(a.key), a.bucket)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(rep), []string{"anchor_overwritten#5", "bad_checkpoint#5"}; !slices.Equal(got, want) {
		t.Errorf("after the overwrite: findings = %v, want %v\n%v", got, want, rep.Findings)
	}
	if rep.BucketVersions != 1 {
		t.Errorf("signed bucket versions checked = %d, want 1 (the original)", rep.BucketVersions)
	}
}

// rewriteWithResignedAnchors is the full attack: a database superuser who
// also holds the signing key rewrites the chain, replaces the Postgres
// checkpoints and anchors fresh checkpoints of the rewritten head. The
// checkpointer refuses to sign it (the head anchor in the bucket pins the
// original #2), so the attacker signs by hand.
func (a *anchoredCheckpoint) rewriteWithResignedAnchors() {
	t, ctx := a.t, context.Background()
	t.Helper()
	tamper(t, a.pool,
		`UPDATE audit_events SET outcome = 'denied' WHERE seq = 2`,
		fmt.Sprintf(rechain, 2),
		`DELETE FROM audit_checkpoints`)
	fresh, err := NewCheckpointer(CheckpointerParams{Pool: a.pool, Key: a.key, Anchor: a.bucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.CheckpointNow(ctx); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "#2 ") {
		t.Fatalf("checkpointer on a rewritten chain: %v, want a refusal naming #2", err)
	}
	var newHead []byte
	if err := a.pool.QueryRow(ctx, `SELECT hash FROM audit_chain_head`).Scan(&newHead); err != nil {
		t.Fatal(err)
	}
	resigned := signCheckpoint(a.key, a.cp.Seq, newHead, a.cp.SignedAt)
	if _, err := a.pool.Exec(ctx, `INSERT INTO audit_checkpoints (seq, head_hash, signature, key_id, signed_at)
		VALUES ($1, $2, $3, $4, $5)`, resigned.Seq, resigned.HeadHash, resigned.Signature, resigned.KeyID, resigned.SignedAt); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(toJSON(resigned))
	if _, err := a.client.PutObject(ctx, a.bucket.Name(), a.objKey, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkRewriteFound: Postgres alone is fooled by the rewrite; the locked
// originals in the bucket are not, and the verify command says so.
func (a *anchoredCheckpoint) checkRewriteFound() {
	t, ctx := a.t, context.Background()
	t.Helper()
	verifyOK(t, a.pool, pubOf(a.key)) // Postgres only: no finding
	rep, err := Verify(ctx, a.pool, pubOf(a.key), a.bucket)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Has(Rewritten, 5) || !slices.ContainsFunc(rep.Findings, func(f Finding) bool {
		return f.Kind == Rewritten && f.Source == SourceBucket
	}) {
		t.Errorf("rewrite with re-signed anchors not caught by the bucket: %v", rep.Findings)
	}

	var out bytes.Buffer
	if err := VerifyCommand(ctx, a.pool, a.client, a.bucket.Name(), pubOf(a.key), &out); !errors.Is(err, ErrTampered) {
		t.Errorf("VerifyCommand: err = %v, want ErrTampered", err)
	}
	t.Logf("audit verify output:\n%s", out.String())
}

// Ensure refuses an existing bucket without Object Lock: it could not keep
// checkpoints write-once.
func TestAnchorRefusesUnlockedBucket(t *testing.T) {
	ctx := context.Background()
	client := minioClient(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "ov-test-nolock-" + hex.EncodeToString(b[:])
	if err := client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.RemoveBucket(context.Background(), name) })
	bucket, err := anchor.New(anchor.Params{Client: client, Bucket: name, Retention: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.Ensure(ctx); !errors.Is(err, anchor.ErrNotLocked) {
		t.Fatalf("Ensure on a bucket without object lock: %v, want ErrNotLocked", err)
	}
}
