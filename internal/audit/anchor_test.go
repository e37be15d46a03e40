package audit

import (
	"bytes"
	"context"
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
	ctx := context.Background()
	pool := newPool(t)
	client, bucket := anchorBucket(t)
	key := newKey(t)
	l := New(pool)
	appendN(t, l, 5)

	cp, err := mustCheckpointer(t, pool, key, bucket).CheckpointNow(ctx)
	if err != nil || cp.Seq != 5 {
		t.Fatalf("checkpoint = %d, %v", cp.Seq, err)
	}
	var objKey, version string
	var anchored *time.Time
	if err := pool.QueryRow(ctx, `SELECT object_key, object_version, anchored_at FROM audit_checkpoints WHERE seq = 5`).
		Scan(&objKey, &version, &anchored); err != nil {
		t.Fatal(err)
	}
	if anchored == nil || objKey != checkpointKey(cp) || version == "" {
		t.Fatalf("checkpoint row: key %q version %q anchored %v", objKey, version, anchored)
	}
	// Nothing new to sign: no second checkpoint.
	if again, err := mustCheckpointer(t, pool, key, bucket).CheckpointNow(ctx); err != nil || !again.SignedAt.Equal(cp.SignedAt) {
		t.Errorf("second checkpoint of an unchanged head: %v, %v", again.SignedAt, err)
	}

	// The stored object is the signed checkpoint, locked in compliance mode.
	original := readVersion(t, client, bucket.Name(), objKey, version)
	if got, err := parseCheckpoint(original); err != nil || !got.Valid(pubOf(key)) || !bytes.Equal(got.HeadHash, cp.HeadHash) {
		t.Fatalf("anchored object: %+v, %v", got, err)
	}
	mode, until, err := client.GetObjectRetention(ctx, bucket.Name(), objKey, version)
	if err != nil || mode == nil || *mode != minio.Compliance || until == nil || until.Before(time.Now()) {
		t.Fatalf("retention = %v until %v (%v), want COMPLIANCE in the future", mode, until, err)
	}
	verifyOK(t, pool, pubOf(key), bucket)

	// The version cannot be deleted, not even bypassing governance, and its
	// retention cannot be shortened.
	if err := client.RemoveObject(ctx, bucket.Name(), objKey, minio.RemoveObjectOptions{VersionID: version}); err == nil {
		t.Error("deleting the locked version succeeded")
	}
	if err := client.RemoveObject(ctx, bucket.Name(), objKey, minio.RemoveObjectOptions{VersionID: version, GovernanceBypass: true}); err == nil {
		t.Error("deleting the locked version with governance bypass succeeded")
	}
	past := time.Now().Add(-time.Hour)
	gov := minio.Governance
	if err := client.PutObjectRetention(ctx, bucket.Name(), objKey, minio.PutObjectRetentionOptions{
		VersionID: version, Mode: &gov, RetainUntilDate: &past, GovernanceBypass: true,
	}); err == nil {
		t.Error("shortening the retention succeeded")
	}

	// "Overwriting" the key adds a version; a plain delete adds a delete
	// marker. The original version is still there, byte for byte.
	forger := newKey(t)
	forged := signCheckpoint(forger, cp.Seq, bytes.Repeat([]byte{7}, HashSize), cp.SignedAt)
	body, _ := json.Marshal(toJSON(forged))
	info, err := client.PutObject(ctx, bucket.Name(), objKey, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("put over the key: %v", err)
	}
	if info.VersionID == version {
		t.Fatal("put over the key replaced the version")
	}
	if err := client.RemoveObject(ctx, bucket.Name(), objKey, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("delete marker: %v", err)
	}
	if got := readVersion(t, client, bucket.Name(), objKey, version); !bytes.Equal(got, original) {
		t.Fatal("the original version changed")
	}

	// Verify checks the original and reports the attempt; the forged
	// version does not verify.
	rep, err := Verify(ctx, pool, pubOf(key), bucket)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(rep), []string{"anchor_overwritten#5", "bad_checkpoint#5"}; !slices.Equal(got, want) {
		t.Errorf("after the overwrite: findings = %v, want %v\n%v", got, want, rep.Findings)
	}
	if rep.BucketVersions != 1 {
		t.Errorf("signed bucket versions checked = %d, want 1 (the original)", rep.BucketVersions)
	}

	// The full attack: a database superuser who also holds the signing key
	// rewrites the chain, replaces the Postgres checkpoints and anchors
	// fresh checkpoints of the rewritten head. The checkpointer refuses to
	// sign it (the head anchor in the bucket pins the original #2), so the
	// attacker signs by hand. Postgres alone is fooled; the locked originals
	// in the bucket are not.
	tamper(t, pool,
		`UPDATE audit_events SET outcome = 'denied' WHERE seq = 2`,
		fmt.Sprintf(rechain, 2),
		`DELETE FROM audit_checkpoints`)
	fresh, err := NewCheckpointer(CheckpointerParams{Pool: pool, Key: key, Anchor: bucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.CheckpointNow(ctx); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "#2 ") {
		t.Fatalf("checkpointer on a rewritten chain: %v, want a refusal naming #2", err)
	}
	var newHead []byte
	if err := pool.QueryRow(ctx, `SELECT hash FROM audit_chain_head`).Scan(&newHead); err != nil {
		t.Fatal(err)
	}
	resigned := signCheckpoint(key, cp.Seq, newHead, cp.SignedAt)
	if _, err := pool.Exec(ctx, `INSERT INTO audit_checkpoints (seq, head_hash, signature, key_id, signed_at)
		VALUES ($1, $2, $3, $4, $5)`, resigned.Seq, resigned.HeadHash, resigned.Signature, resigned.KeyID, resigned.SignedAt); err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(toJSON(resigned))
	if _, err := client.PutObject(ctx, bucket.Name(), objKey, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, pool, pubOf(key)) // Postgres only: no finding
	rep, err = Verify(ctx, pool, pubOf(key), bucket)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Has(Rewritten, 5) || !slices.ContainsFunc(rep.Findings, func(f Finding) bool {
		return f.Kind == Rewritten && f.Source == SourceBucket
	}) {
		t.Errorf("rewrite with re-signed anchors not caught by the bucket: %v", rep.Findings)
	}

	var out bytes.Buffer
	if err := VerifyCommand(ctx, pool, client, bucket.Name(), pubOf(key), &out); !errors.Is(err, ErrTampered) {
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
